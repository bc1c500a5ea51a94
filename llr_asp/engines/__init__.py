"""Engines on the core: what-if, the interview (next question), analysis, difference, the
`check` gate, batch and the literate policy. Each computes plain data from decisions; none
renders or prints."""
