// The clinicians' page: sign in with a key, search by study, text or upload, see similar cases with
// looping clips, the draft with every sentence linked to its evidence, and the comparison with the prior.
"use strict";

const VIEWS = ["A2C", "A3C", "A4C", "A5C", "Apical_Doppler", "Doppler_Parasternal_Long", "Doppler_Parasternal_Short",
  "Parasternal_Long", "Parasternal_Short", "SSN", "Subcostal"];
const FINDINGS = ["lv_dilation", "lv_systolic_dysfunction", "wall_motion_abnormality", "rv_dilation",
  "la_dilation", "mitral_regurgitation", "aortic_stenosis", "aortic_regurgitation",
  "tricuspid_regurgitation", "pericardial_effusion", "pulmonary_hypertension"];
let key = sessionStorage.getItem("rag-key") || "";
const $ = (id) => document.getElementById(id);

function esc(text) {
  const d = document.createElement("div");
  d.textContent = text == null ? "" : String(text);
  return d.innerHTML;
}

async function call(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + key }, options.headers || {});
  const r = await fetch(path, Object.assign({}, options, { headers }));
  if (!r.ok) {
    let reason = r.status + "";
    try { reason = (await r.json()).error || reason; } catch (e) { /* not JSON */ }
    throw new Error(reason);
  }
  return r.headers.get("content-type")?.includes("json") ? r.json() : r;
}

async function imageUrl(path) {
  const r = await call(path);
  return URL.createObjectURL(await r.blob());
}

function show(id, on = true) { $(id).hidden = !on; }

async function signIn() {
  key = $("key").value.trim() || key;
  try {
    await call("/similar?q=echo&k=1");
    sessionStorage.setItem("rag-key", key);
    show("login", false); show("app");
    $("who").textContent = "signed in";
  } catch (e) {
    $("login-error").textContent = "Sign-in failed: " + e.message;
  }
}

function clipFigure(clip) {
  const fig = document.createElement("figure");
  fig.innerHTML = `<img alt="${esc(clip.view)} clip ${clip.clip_id}"><figcaption>${esc(clip.view || "?")}</figcaption>`;
  imageUrl(clip.preview).then((u) => { fig.querySelector("img").src = u; }).catch(() => {});
  return fig;
}

async function showQuery(studyId) {
  const c = await call(`/cases/${studyId}`);
  $("query-id").textContent = `${studyId} (${c.study_date || "undated"})`;
  const box = $("query-clips");
  box.innerHTML = "";
  c.clips.slice(0, 6).forEach((clip) => box.appendChild(clipFigure(clip)));
  show("query-case");
}

async function neighbourCard(n) {
  const card = document.createElement("div");
  card.className = "card";
  card.dataset.study = n.study_id;
  card.innerHTML = `<div class="clip"></div><div class="meta">study <a href="#" class="open">${n.study_id}</a>,
    similarity ${n.similarity}, ${esc(n.study_date || "")}<br>${esc((n.views || []).join(", "))}</div>
    <button class="refine">Use as query</button>`;
  card.querySelector(".refine").onclick = () => { $("study").value = n.study_id; $("text").value = ""; search(); };
  card.querySelector(".open").onclick = (e) => { e.preventDefault(); openCase(n.study_id); };
  call(`/cases/${n.study_id}`).then((c) => {
    if (c.clips.length) card.querySelector(".clip").appendChild(clipFigure(c.clips[0]));
  }).catch(() => {});
  return card;
}

async function openCase(studyId) {
  const c = await call(`/cases/${studyId}`);
  $("case-id").textContent = `${studyId} (${c.study_date || "undated"})`;
  $("case").innerHTML = `<pre>${esc(c.report || "no report stored")}</pre>`;
  show("case-box");
  $("case-box").scrollIntoView();
}

function renderDraft(report) {
  const parts = [];
  for (const section of report.sections) {
    const sentences = section.sentences.map((s) => {
      const cites = s.evidence.filter((e) => e.kind === "case")
        .map((e) => `<a href="#" class="evidence" data-study="${e.study_id}">[${e.study_id}]</a>`).join("");
      return `${esc(s.text)}<span class="cite">${cites}</span>`;
    }).join(" ");
    parts.push(`<p><b>${esc(section.name)}:</b> ${sentences}</p>`);
  }
  $("draft").innerHTML = parts.join("");
  $("draft").querySelectorAll("a.evidence").forEach((a) => {
    a.onclick = (e) => { e.preventDefault(); openCase(a.dataset.study); };
  });
  show("draft-box");
}

function renderComparison(c) {
  if (c.status !== "compared") {
    $("compare").innerHTML = `<p>${esc(c.statements.map((s) => s.text).join(" "))}</p>`;
  } else {
    const text = c.statements.map((s) => `${esc(s.text)} <span class="cite">[${s.evidence.join(", ")}]</span>`).join(" ");
    const rows = c.findings.filter((f) => f.call !== "unchanged")
      .map((f) => `<tr class="changed"><td>${esc(f.name)}</td><td>${f.prior_grade}</td><td>${f.current_grade}</td><td>${esc(f.call)}</td></tr>`);
    const pairs = document.createElement("div");
    pairs.className = "grid";
    for (const v of c.views.slice(0, 4)) {
      pairs.appendChild(clipFigure({ clip_id: v.prior.clip_id, view: v.view + " prior", preview: `/clips/${v.prior.clip_id}/preview.gif` }));
      pairs.appendChild(clipFigure({ clip_id: v.current.clip_id, view: v.view + " current", preview: `/clips/${v.current.clip_id}/preview.gif` }));
    }
    $("compare").innerHTML = `<p>${text}</p>` + (rows.length ? `<table><tr><th>finding</th><th>prior</th><th>now</th><th>call</th></tr>${rows.join("")}</table>` : "");
    $("compare").appendChild(pairs);
  }
  show("compare-box");
}

async function search(event) {
  if (event) event.preventDefault();
  $("error").textContent = "";
  const study = $("study").value.trim();
  const text = $("text").value.trim();
  const box = $("neighbours");
  box.innerHTML = "";
  try {
    let cases;
    if (study) {
      const params = new URLSearchParams({ k: "8" });
      if ($("view").value) params.append("view", $("view").value);
      if ($("finding").value) params.append("finding", $("finding").value);
      if ($("after").value) params.set("after", $("after").value);
      if ($("before").value) params.set("before", $("before").value);
      await showQuery(study);
      cases = (await call(`/cases/${study}/similar?${params}`)).cases;
    } else if (text) {
      cases = (await call(`/similar?${new URLSearchParams({ q: text, k: "8" })}`)).cases;
      show("query-case", false);
    } else {
      throw new Error("give a study ID or a text");
    }
    for (const n of cases) box.appendChild(await neighbourCard(n));
    show("neighbours-box");
    if (study) {
      renderDraft(await call(`/cases/${study}/draft`, { method: "POST" }));
      renderComparison(await call(`/cases/${study}/compare`));
    }
  } catch (e) {
    $("error").textContent = e.message;
  }
}

async function upload(event) {
  event.preventDefault();
  const form = new FormData();
  for (const f of $("files").files) form.append("files", f, f.name);
  $("upload-status").textContent = "uploading and embedding...";
  try {
    const r = await call("/studies", { method: "POST", body: form });
    $("upload-status").textContent = `stored as study ${r.study_id}`;
    $("study").value = r.study_id;
    $("text").value = "";
    await search();
  } catch (e) {
    $("upload-status").textContent = "";
    $("error").textContent = "Upload refused: " + e.message;
  }
}

async function pacsSearch(event) {
  event.preventDefault();
  $("error").textContent = "";
  const params = new URLSearchParams();
  if ($("pacs-patient").value.trim()) params.set("patient", $("pacs-patient").value.trim());
  if ($("pacs-date").value.trim()) params.set("date", $("pacs-date").value.trim());
  const list = $("pacs-list");
  list.innerHTML = "";
  try {
    const found = (await call(`/pacs/studies?${params}`)).studies;
    if (!found.length) list.innerHTML = "<li>no study found</li>";
    for (const s of found) {
      const li = document.createElement("li");
      li.innerHTML = `${esc(s.date || "")} ${esc((s.modalities || []).join(","))} ${esc(s.description || "")}
        (${s.instances ?? "?"} instances) <button>Open</button>`;
      li.querySelector("button").onclick = async () => {
        li.querySelector("button").disabled = true;
        try {
          const r = await call(`/pacs/studies/${encodeURIComponent(s.study_uid)}`, { method: "POST" });
          $("study").value = r.study_id;
          $("text").value = "";
          await search();
        } catch (e) {
          $("error").textContent = "PACS fetch refused: " + e.message;
        }
      };
      list.appendChild(li);
    }
  } catch (e) {
    $("error").textContent = e.message;
  }
}

VIEWS.forEach((v) => $("view").insertAdjacentHTML("beforeend", `<option>${v}</option>`));
FINDINGS.forEach((f) => $("finding").insertAdjacentHTML("beforeend", `<option>${f}</option>`));
$("signin").onclick = signIn;
$("search").onsubmit = search;
$("upload").onsubmit = upload;
$("pacs").onsubmit = pacsSearch;
if (key) signIn();
