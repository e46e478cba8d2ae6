// A node's main failures — take down, stop, crash, restart — can be pressed
// on the node itself: a click (or Enter) on a node opens a small menu of its
// group's switch and action buttons from the knob panel. Each item presses
// the panel's own control, so it sends the same validated command.

const menu = document.createElement('div');
menu.className = 'node-menu';
menu.setAttribute('role', 'menu');
menu.dataset.testid = 'node-menu';
menu.tabIndex = -1;
menu.hidden = true;
document.body.append(menu);

// controlsOf are the panel's buttons for node id: its take-down switch and
// the action buttons of its knob group.
function controlsOf(id) {
  const group = CSS.escape(id);
  return [
    ...document.querySelectorAll(`.switches button[data-group="${group}"]`),
    ...document.querySelectorAll(`fieldset.group[data-group="${group}"] .knob[data-type="action"] button`),
  ];
}

function close() {
  menu.hidden = true;
  menu.replaceChildren();
}

function open(node) {
  const id = node.dataset.node;
  const controls = controlsOf(id);
  if (!controls.length) return;
  menu.replaceChildren();
  const head = document.createElement('p');
  head.textContent = id;
  menu.append(head);
  for (const c of controls) {
    const item = document.createElement('button');
    item.type = 'button';
    item.setAttribute('role', 'menuitem');
    item.textContent = c.textContent;
    if (c.dataset.key) item.dataset.key = c.dataset.key; // presenter mode shows it
    item.disabled = c.disabled;
    item.addEventListener('click', () => {
      close();
      c.click();
    });
    menu.append(item);
  }
  const box = node.getBoundingClientRect();
  menu.hidden = false;
  const w = menu.offsetWidth;
  menu.style.left = `${Math.max(8, Math.min(window.innerWidth - w - 8, box.left + box.width / 2 - w / 2))}px`;
  menu.style.top = `${Math.min(window.innerHeight - menu.offsetHeight - 8, box.bottom + 6)}px`;
  // The menu, not its first item, takes the focus: the Enter that opened
  // it must not also press that item. Tab reaches the items.
  menu.focus();
}

// nodeActions lets every node of svg that has controls open its menu, and
// marks those nodes so they look and behave like buttons. Call it again
// whenever the diagram draws its nodes anew.
export function nodeActions(svg) {
  for (const g of svg.querySelectorAll('[data-node]')) {
    const has = controlsOf(g.dataset.node).length > 0;
    // An attribute, not a class: the diagram sets a node's class anew with
    // each state.
    g.toggleAttribute('data-actions', has);
    if (has) {
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'button');
      g.setAttribute('aria-label', `${g.dataset.node}: its failures`);
    }
  }
  if (svg.dataset.nodeActions) return;
  svg.dataset.nodeActions = 'on';
  svg.addEventListener('click', (e) => {
    const node = e.target.closest('[data-actions]');
    if (node) {
      e.stopPropagation();
      open(node);
    }
  });
  svg.addEventListener('keydown', (e) => {
    const node = e.target.closest('[data-actions]');
    if (node && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      open(node);
    }
  });
  document.addEventListener('click', (e) => { if (!menu.contains(e.target)) close(); });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') close(); });
}
