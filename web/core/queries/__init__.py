"""All SQL, as async functions that take a connection first and return frozen dataclasses.

One module per subject; callers import the subject module or its names, never this package:
  base                row types every module shares (App, LogEntry, NewLogEntry...), Connection
  filtering           the event filter as SQL, and Params, which numbers a statement's values
  apps                apps: create, look up by id or write key, list with counts, retention days
  plans               tracking plan versions
  events              stored events: the worker's insert and notify, filtered reads, counts
  dashboard           the live view's tiles, violations and coverage
  rollups             counts kept as events are stored, and the rows they still need
  exports             an export's pages, newest first between two row ids
  snowplow            the Snowplow Micro API's events
  alerts              alert settings, the failure and invalid-share scans, alert deliveries
  retention           when each app's events expire, and purging them
  partitions          the events table's daily partitions: open the next, drop old ones
  message_deliveries  RabbitMQ's redeliveries of a message, counted
  scheduled_jobs      the scheduler's claims on periodic jobs
  dead_letters        events that could not be stored, parked and retried
  status              the pipeline status page's and metrics' figures
  users               dashboard users and the secrets web processes share
  tokens              API tokens: create, look up by digest, list, revoke, last used
  pairings            QA sessions paired with a device: their short codes and expiry
  hygiene             the per-app switch of the hygiene checks
  property_stats      a bounded sample of recent payloads per event name, for property statistics
  scenarios           scenarios, and a test session's events in arrival order
  parity              the parity page's recent sessions and a session's events, capped
"""
