// Package cdevents posts one CloudEvent per deployment to an HTTP receiver,
// so CI/CD tools can consume deployments without Argo CD Notifications.
//
// Each event is a CloudEvents v1.0 event sent with the HTTP binding in
// structured content mode: one event per POST, its body the event in the
// JSON format, Content-Type application/cloudevents+json. Its data is a
// CDEvent (CDEvents spec v0.4.1):
//
//   - a succeeded deployment is a dev.cdevents.service.deployed.0.2.0;
//   - a rollback (a successful deployment back to revisions the app ran
//     before) is a dev.cdevents.service.rolledback.0.2.0;
//   - a failed deployment sends nothing: it deployed nothing, and CDEvents
//     has no "deployment failed" service event. It is counted in
//     crowsnest_app_deployments_total{result="failed"} and written to Loki.
//
// The CDEvent's subject is the Argo CD app ("<namespace>/<name>"), its
// environment the app's env, its artifactId a purl of the app and the
// deployed revision (see ArtifactID); customData carries the project,
// revisions, initiator, trace id and, when known, the commit and lead time
// (see CustomData). The event id is stable per deployment (see NewEvent),
// so receivers can drop the duplicates a retry or a leader change may
// cause: delivery is at least once while the sink runs, and only from the
// leading replica.
//
// A Sink never blocks its caller: events wait in the bounded queue every
// output shares (internal/queue), and when it is full they are dropped and
// counted. A POST is retried with backoff on 429, 5xx and transport
// errors, each attempt bounded by a timeout; any other non-2xx answer
// drops the event as rejected. Run is the worker; when its context ends
// it flushes within the flush timeout. Counters: crowsnest_cloudevents_sent_total and
// crowsnest_cloudevents_dropped_total{reason} (see the Reason constants).
package cdevents
