// Stand-in for @grafana/runtime in the Node test of the patched client: NOT Grafana's package.
// The client code under test (services/BeTraceService.ts, services/runtime.ts and
// services/backendProxy.ts after the patch series) uses one thing from it, config.appSubUrl:
// Grafana served from the root of its host has an empty one.
export const config = { appSubUrl: '' };
