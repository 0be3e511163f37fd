// RudderStack JS SDK v3, bundled build: plugins compiled in, nothing loaded from a CDN.
// The source config comes from the server: GET <server>/sourceConfig/?writeKey=... (configUrl).
import { RudderAnalytics } from '@rudderstack/analytics-js/bundled';

let analytics;

window.sdk = {
  name: 'rudderstack',
  async init(serverUrl, writeKey) {
    analytics = new RudderAnalytics();
    await new Promise((resolve) => {
      analytics.load(writeKey, serverUrl, {
        configUrl: serverUrl,
        logLevel: 'ERROR',
        plugins: [],
        onLoaded: () => resolve(),
      });
    });
  },
  // Rudder chooses its own messageId. The callbacks run once the event is queued, not sent.
  async track(name, properties) {
    await new Promise((resolve) => analytics.track(name, properties, () => resolve()));
  },
  async identify(userId, traits) {
    await new Promise((resolve) => analytics.identify(userId, traits, () => resolve()));
  },
  async page() {
    await new Promise((resolve) => analytics.page(() => resolve()));
  },
  // The XHR queue sends each event by itself right after it is queued.
  async flush() {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  },
};
