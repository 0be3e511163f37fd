// @amplitude/analytics-browser: events only to <server>/2/httpapi; no remote config, no
// diagnostics, no autocapture except page views, which page() triggers.
import * as amplitude from '@amplitude/analytics-browser';

let pageViews = false;

window.sdk = {
  name: 'amplitude',
  async init(serverUrl, writeKey) {
    await amplitude.init(writeKey, {
      serverUrl: `${serverUrl}/2/httpapi`,
      flushIntervalMillis: 100,
      fetchRemoteConfig: false,
      remoteConfig: { fetchRemoteConfig: false },
      enableDiagnostics: false,
      identityStorage: 'none',
      logLevel: amplitude.Types.LogLevel.Warn,
      autocapture: {
        attribution: false,
        fileDownloads: false,
        formInteractions: false,
        sessions: false,
        elementInteractions: false,
        frustrationInteractions: false,
        networkTracking: false,
        webVitals: false,
        pageUrlEnrichment: false,
        // The plugin asks trackOn on load and on each history change.
        pageViews: { trackOn: () => pageViews, trackHistoryChanges: 'all' },
      },
    }).promise;
  },
  // Resolves with the code the SDK read from the answer: 200 only if the body said so.
  async track(name, properties, id) {
    const result = await amplitude.track(name, properties, id ? { insert_id: id } : undefined)
      .promise;
    return result.code;
  },
  async identify(userId, traits) {
    amplitude.setUserId(userId);
    const identify = new amplitude.Identify();
    for (const [key, value] of Object.entries(traits || {})) identify.set(key, value);
    return (await amplitude.identify(identify).promise).code;
  },
  async page() {
    pageViews = true;
    history.pushState({}, '', `${location.pathname}?page=${Date.now()}`);
  },
  async flush() {
    await amplitude.flush().promise;
  },
};
