// @segment/analytics-next, talking to the server only.
// Settings come from GET <server>/v1/projects/<writeKey>/settings (cdnURL). The load option
// names the server as the API host too, so nothing (events or the SDK's own metrics) can
// leave loopback even if the settings were wrong; the test checks the settings document itself.
import { AnalyticsBrowser } from '@segment/analytics-next';

let analytics;

window.sdk = {
  name: 'segment',
  async init(serverUrl, writeKey) {
    const url = new URL(serverUrl);
    analytics = AnalyticsBrowser.load(
      { writeKey, cdnURL: serverUrl },
      {
        integrations: {
          'Segment.io': { apiHost: `${url.host}/v1`, protocol: url.protocol.replace(':', '') },
        },
        disableClientPersistence: true,
      },
    );
    await analytics.ready();
  },
  // Resolves once the request was answered (standard delivery sends each call by itself).
  async track(name, properties, id) {
    await analytics.track(name, properties, id ? { messageId: id } : undefined);
  },
  async identify(userId, traits) {
    await analytics.identify(userId, traits);
  },
  async page() {
    await analytics.page();
  },
  async flush() {},
};
