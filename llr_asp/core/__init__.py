"""The core: the rule set read from the `.lp` files, the patient, the reasoner and its
decisions as plain frozen data. Imports nothing above it (engines, formats, views, shells)."""
