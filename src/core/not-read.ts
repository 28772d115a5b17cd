/**
 * Thrown while a value is read that its owner has not fetched yet (engine/scope.ts: the facts of a host
 * the run has not read). The template renderer and the expression evaluator let it through as it is,
 * neither wrapped nor explained, so that whoever evaluates can fetch the value and evaluate again
 * (RunContext.withFacts): evaluating is pure, so the second evaluation sees what the first would have.
 */
export class ValueNotRead extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueNotRead';
  }
}
