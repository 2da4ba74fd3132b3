"""Pixel renderer of the simulated archive: echo cines whose findings are in the pixels.

:func:`render_clip` turns a :class:`~rag.simulate.truth.StudyTruth` and a view into a B-mode (optionally
colour-Doppler) cine: the view's anatomy (:mod:`rag.simulate.anatomy`) is painted as an echogenicity map
in dB, multiplied by spatially correlated Rayleigh speckle that is scan-converted from beam space (so
lateral resolution degrades with depth), attenuated with an imperfect time-gain compensation, log
compressed and masked to a fan-shaped sector. A burned-in ECG trace (R waves on the end-diastolic
frames), text labels, a grey bar and an orientation marker lie outside the sector, as on a real cart.

The speckle moves with the LV walls (a smooth displacement field interpolated from the LV outline) and
decorrelates slowly over time. Colour-Doppler views colour the blood inside a colour box by velocity
towards or away from the probe, with aliasing and a turbulent mosaic for regurgitant and stenotic jets.

Static geometry (sector, gain maps, speckle fields, overlay) is computed once per clip; frames are built
with vectorised OpenCV calls: 0.12-0.3 s for 48 frames of 384x512 on one core. The same generator state
gives byte-identical frames.

Modules: :mod:`~rag.simulate.render.clip` (frame composition), :mod:`~rag.simulate.render.sector`
(sector geometry, painting), :mod:`~rag.simulate.render.tissue` (speckle, tissue motion, gain),
:mod:`~rag.simulate.render.doppler` (colour flow) and :mod:`~rag.simulate.render.overlay` (labels, ECG).
"""

from rag.simulate.render.clip import RenderedClip, render_clip

__all__ = ["RenderedClip", "render_clip"]
