/**
 * A small well-formedness check for tykdr's generated HTML: every element that is opened is closed, in
 * order (void elements and self-closed SVG elements excepted). Text inside <style> and <title> is skipped.
 * Returns the problems found, empty when the tags balance.
 */
const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);

export function unbalancedTags(html: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  const body = html.replace(/<!DOCTYPE[^>]*>/i, '').replace(/<!--[^]*?-->/g, '').replace(/<style>[^]*?<\/style>/g, '<style></style>');
  const tag = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g;
  for (const m of body.matchAll(tag)) {
    const [, closing, rawName, , selfClosing] = m;
    const name = rawName!.toLowerCase();
    if (closing) {
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> at ${m.index} closes <${open ?? 'nothing'}>`);
    } else if (!selfClosing && !VOID.has(name)) {
      stack.push(name);
    }
  }
  if (stack.length > 0) problems.push(`never closed: ${stack.join(', ')}`);
  if (/<[^>]*$/.test(body)) problems.push('a tag is cut off at the end');
  return problems;
}
