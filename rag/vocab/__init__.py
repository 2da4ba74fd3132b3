"""The clinical terms every stage shares: report sections, echo views, the phenotypes (findings and
measurements) with their grade cut-offs, and the reader of a sentence's stated grade."""
