// posthog-js with everything that would load scripts turned off; flags and remote config are
// asked of the server, as by default.
import posthog from 'posthog-js';

window.sdk = {
  name: 'posthog',
  async init(serverUrl, writeKey) {
    await new Promise((resolve) => {
      posthog.init(writeKey, {
        api_host: serverUrl,
        // navigator.webdriver is true under automation: posthog drops "bot" events otherwise.
        opt_out_useragent_filter: true,
        autocapture: false,
        capture_pageview: false,
        capture_pageleave: false,
        capture_dead_clicks: false,
        capture_exceptions: false,
        capture_performance: false,
        rageclick: false,
        disable_session_recording: true,
        disable_surveys: true,
        disable_product_tours: true,
        disable_conversations: true,
        disable_web_experiments: true,
        disable_external_dependency_loading: true,
        advanced_disable_toolbar_metrics: true,
        persistence: 'memory',
        // Its minimum; the default is 3 s.
        request_queue_config: { flush_interval_ms: 250 },
        loaded: () => resolve(),
      });
    });
  },
  // The id is kept only if it is a UUID: posthog silently replaces anything else.
  async track(name, properties, id) {
    posthog.capture(name, properties, id ? { uuid: id } : undefined);
  },
  async identify(userId, traits) {
    posthog.identify(userId, traits);
  },
  async page() {
    posthog.capture('$pageview');
  },
  // posthog-js has no public flush: its queue sends every 250 ms.
  async flush() {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  },
};
