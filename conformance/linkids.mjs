// NLM's fhirpath.js (with its R4 model) on QuestionnaireResponses and the Questionnaire each
// answers: what the Java validator reports as "linkId not found", and answers of another type
// than their item's.
// stdin: {"questionnaire": <Questionnaire>, "responses": [<QuestionnaireResponse>, ...]}; a
// response whose `questionnaire` is `#id` is judged against its contained form instead.
// stdout: [{"id", "linkIds": [...], "unknown": [...], "mistyped": ["<linkId>: <value[x]> for a <type> item"]}]
import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4/index.js';

const read = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
};
const VALUE = {
  boolean: ['valueBoolean'], decimal: ['valueDecimal'], integer: ['valueInteger'], date: ['valueDate'],
  string: ['valueString'], choice: ['valueCoding'], 'open-choice': ['valueCoding', 'valueString'],
};
const { questionnaire, responses } = await read();
const verdicts = responses.map((response) => {
  const named = response.questionnaire ?? '';
  const form = named.startsWith('#')
    ? (response.contained ?? []).find((r) => r.resourceType === 'Questionnaire' && r.id === named.slice(1))
    : questionnaire;
  const items = fhirpath.evaluate(form ?? {}, 'Questionnaire.repeat(item)', null, r4);
  const typeOf = Object.fromEntries(items.map((i) => [i.linkId, i.type]));
  const linkIds = fhirpath.evaluate(response, 'QuestionnaireResponse.repeat(item).linkId', null, r4);
  const answered = fhirpath.evaluate(response, 'QuestionnaireResponse.repeat(item).where(answer.exists())', null, r4);
  const mistyped = [];
  for (const item of answered) {
    for (const answer of item.answer) {
      const keys = Object.keys(answer).filter((k) => k.startsWith('value'));
      const allowed = VALUE[typeOf[item.linkId]] ?? [];
      if (typeOf[item.linkId] && !keys.every((k) => allowed.includes(k)))
        mistyped.push(`${item.linkId}: ${keys.join(', ')} for a ${typeOf[item.linkId]} item`);
    }
  }
  return { id: response.id, linkIds, unknown: linkIds.filter((l) => !(l in typeOf)), mistyped, formFound: !!form };
});
process.stdout.write(JSON.stringify(verdicts));
