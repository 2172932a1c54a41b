/**
 * Replaces a view's content with a new drawing of it, keeping what the user was doing: live
 * updates redraw the view while someone may be tabbing through it or reading a table they
 * unfolded, and neither their focus nor the table should be taken away.
 */

const FOCUSABLE = 'a[href], button, select, input, summary, [tabindex]';

/**
 * What identifies a control from one drawing to the next.
 * @param {Element} element
 */
function key(element) {
  const label = element.getAttribute('aria-label') ?? element.textContent ?? '';
  return [element.tagName, element.getAttribute('href'), element.getAttribute('name'), label].join(
    '|',
  );
}

/**
 * @param {HTMLElement} container
 * @param {Node} content
 */
export function repaint(container, content) {
  const active = document.activeElement;
  const focused = active !== null && container.contains(active) ? key(active) : null;
  const open = new Set(
    [...container.querySelectorAll('details[open] > summary')].map(
      (summary) => summary.textContent,
    ),
  );
  container.replaceChildren(content);
  for (const summary of container.querySelectorAll('details > summary')) {
    if (open.has(summary.textContent)) summary.parentElement?.setAttribute('open', '');
  }
  if (focused === null) return;
  const again = [...container.querySelectorAll(FOCUSABLE)].find(
    (element) => key(element) === focused,
  );
  if (again instanceof HTMLElement || again instanceof SVGElement) again.focus();
}
