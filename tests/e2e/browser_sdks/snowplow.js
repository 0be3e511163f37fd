// @snowplow/browser-tracker: POSTs to <server>/snowplow/<app>/com.snowplowanalytics.snowplow/tp2
// with credentials: 'include', so the server must answer CORS for credentials.
import {
  flushBuffer,
  newTracker,
  setUserId,
  trackPageView,
  trackSelfDescribingEvent,
  trackStructEvent,
} from '@snowplow/browser-tracker';

window.sdk = {
  name: 'snowplow',
  async init(serverUrl, writeKey, appId) {
    newTracker('sp', `${serverUrl}/snowplow/${appId}`, {
      appId,
      platform: 'web',
      eventMethod: 'post',
      bufferSize: 1,
      stateStorageStrategy: 'none',
      contexts: { webPage: true },
    });
  },
  // A self-describing event, named com.acme/<name> by its schema. Snowplow makes its own eid.
  async track(name, properties) {
    trackSelfDescribingEvent({
      event: { schema: `iglu:com.acme/${name}/jsonschema/1-0-0`, data: properties },
    });
  },
  async structured(category, action) {
    trackStructEvent({ category, action });
  },
  // Snowplow has no identify event: the user id rides on the events after it.
  async identify(userId) {
    setUserId(userId);
  },
  async page() {
    trackPageView();
  },
  async flush() {
    flushBuffer();
    await new Promise((resolve) => setTimeout(resolve, 500));
  },
};
