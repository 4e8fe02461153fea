// Loads a built module.js (AMD, as Grafana loads it) under React 19 from the npm registry and
// renders the app's root page, its configuration page and its Signals tab into a jsdom document.
//
// What is real: the module.js from `make plugin`, React and react-dom 19 (this folder's lock
// file), their JSX runtime, the DOM of jsdom. What is NOT Grafana: the define() shim below and
// the stand-ins for Grafana's other shared modules (@grafana/data, @grafana/ui, @grafana/runtime,
// react-router-dom and the rest), which only make components that render their children, a
// theme that answers every property, and an AppPlugin that records the pages it is given.
// Grafana itself shares React with plugins the same way: react, react-dom and react/jsx-runtime
// are handed to the module by its loader, never bundled.
//
// Usage: node load_module.mjs <module.js>; prints one JSON document (exit 0), or the error (1).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import vm from 'node:vm';

const require = createRequire(import.meta.url);
const { JSDOM, VirtualConsole } = require('jsdom');

// jsdom's CSS parser refuses the editor's nested CSS; a browser reads it. Other errors are shown.
const virtualConsole = new VirtualConsole();
virtualConsole.on('jsdomError', (e) => {
  if (!String(e.message).includes('Could not parse CSS stylesheet')) console.error(e.message);
});
const dom = new JSDOM('<!doctype html><html><body><div id="root"></div></body></html>', {
  url: 'http://127.0.0.1:3000/a/betrace-app',
  pretendToBeVisual: true,
  virtualConsole,
});
const win = dom.window;
for (const name of Object.getOwnPropertyNames(win)) {
  if (!(name in globalThis)) {
    try {
      globalThis[name] = win[name];
    } catch {}
  }
}
// methods the window inherits (not own properties): bound to it, as a browser's global has them
for (const name of ['addEventListener', 'removeEventListener', 'dispatchEvent', 'getComputedStyle',
  'requestAnimationFrame', 'cancelAnimationFrame']) {
  if (typeof win[name] === 'function') globalThis[name] = win[name].bind(win);
}
Object.assign(globalThis, { window: win, document: win.document, self: win, location: win.location });
Object.defineProperty(globalThis, 'navigator', { value: win.navigator, configurable: true });
// Browser APIs jsdom lacks that the bundled code editor (Monaco) calls while it loads.
win.document.queryCommandSupported = () => false;
win.document.execCommand = () => false;
// Grafana loads module.js with a script of its own: webpack takes its public path from it.
Object.defineProperty(win.document, 'currentScript', {
  value: { tagName: 'SCRIPT', src: 'http://127.0.0.1:3000/public/plugins/betrace-app/module.js' },
  configurable: true,
});
win.matchMedia = () => ({ matches: false, addListener() {}, removeListener() {}, addEventListener() {}, removeEventListener() {} });
globalThis.matchMedia = win.matchMedia;

const React = require('react');
const shared = {
  react: React,
  'react-dom': require('react-dom'),
  'react-dom/client': require('react-dom/client'),
  'react/jsx-runtime': require('react/jsx-runtime'),
  'react/jsx-dev-runtime': require('react/jsx-dev-runtime'),
};

// Anything: a callable, constructible value whose every property is again anything, and which
// prints as an empty string (a theme colour, a style class, a helper of a stubbed library).
const anything = () =>
  new Proxy(function () {}, {
    get: (_t, key) => (key === Symbol.toPrimitive ? () => '' : key === 'then' ? undefined : anything()),
    apply: () => anything(),
    construct: () => anything(),
  });

const component = (name) => {
  const C = ({ children }) => React.createElement('div', { 'data-stub': name }, children);
  C.displayName = name;
  return C;
};

class AppPlugin {
  configPages = [];
  setRootPage(root) {
    this.root = root;
    return this;
  }
  addConfigPage(page) {
    this.configPages.push(page);
    return this;
  }
}

const ui = new Proxy(
  {},
  {
    get: (_t, key) =>
      typeof key !== 'string' || key === '__esModule'
        ? undefined
        : key.startsWith('use') || key === 'stylesFactory' || key === 'css' || key === 'cx'
          ? () => anything()
          : component(key),
  }
);

const stubs = {
  '@grafana/data': new Proxy({ AppPlugin }, { get: (t, k) => (k in t ? t[k] : k === '__esModule' ? undefined : anything()) }),
  '@grafana/ui': ui,
  '@grafana/runtime': {
    config: { appSubUrl: '' },
    getBackendSrv: () => ({ post: async () => ({}), get: async () => ({}), fetch: () => anything() }),
  },
};

const deps = [];
let exported;
globalThis.define = (names, factory) => {
  deps.push(...names);
  exported = factory(...names.map((n) => shared[n] ?? stubs[n] ?? anything()));
};
globalThis.define.amd = {};

// The module's own calls to the backend go to the (absent) Grafana: answer them as it would.
globalThis.fetch = async () => new win.Response('{"message":"no Grafana here"}', { status: 502 });

// The page's text once renders stop (effects render again): unchanged for 2 s, at most 20 s.
const settled = async (host) => {
  let last = null;
  let same = 0;
  for (let waited = 0; waited < 20000 && same < 10; waited += 200) {
    await new Promise((r) => setTimeout(r, 200));
    same = host.textContent === last ? same + 1 : 0;
    last = host.textContent;
  }
  return last;
};

// The app's own logging (console.log) goes to stderr: stdout holds only the result.
console.log = (...args) => console.error(...args);

const file = process.argv[2];
try {
  vm.runInThisContext(readFileSync(file, 'utf8'), { filename: file });
  const plugin = exported.plugin;
  const { createRoot } = shared['react-dom/client'];
  const rendered = {};
  const pages = {
    root: () => React.createElement(plugin.root, { meta: { id: 'betrace-app', jsonData: {} }, path: '/a/betrace-app', query: {}, onNavChanged() {} }),
    config: () =>
      React.createElement(plugin.configPages[0].body, {
        plugin: { meta: { id: 'betrace-app', enabled: true, pinned: true, jsonData: { backendUrl: 'http://betrace-backend:12011' }, secureJsonFields: {} } },
        query: {},
      }),
  };
  const errors = [];
  const render = async (name, element) => {
    const host = document.createElement('div');
    document.body.appendChild(host);
    const root = createRoot(host, { onUncaughtError: (e) => errors.push(`${name}: ${e.message}`) });
    root.render(element);
    rendered[name] = await settled(host);
    root.unmount();
  };
  for (const [name, element] of Object.entries(pages)) await render(name, element());
  // The Signals tab (the root page at ?tab=signals), its calls answered as the backend answers
  // an empty list through Grafana's proxy, and counted: it asks on open, then every 10 s.
  const calls = [];
  globalThis.fetch = async (url) => {
    calls.push(String(url));
    const body = '{"violations":[],"totalCount":0}';
    return new Response(body, { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
  win.history.pushState({}, '', '/a/betrace-app?tab=signals');
  await render('signals', pages.root());
  const signalsCalls = calls.length;
  const result = { react: React.version, deps, rendered, errors, signalsCalls, firstCall: calls[0] };
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
} catch (error) {
  // the message and the frames, not the minified source line V8 puts in front of a script's stack
  const frames = String(error?.stack ?? '').split('\n').filter((l) => l.startsWith('    at ')).slice(0, 8);
  process.stderr.write(`module.js failed to load under React ${React.version}: ${error?.name}: ${error?.message}\n${frames.join('\n')}\n`);
  process.exit(1);
}
