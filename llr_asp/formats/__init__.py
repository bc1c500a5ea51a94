"""Formats for machines: JSON Lines and CSV in and out, Arrow and Parquet, FHIR resources and
SDC's adaptive form, SARIF and JUnit. A format may carry the views' plain wording (a FHIR
display text); no view imports a format."""
