// Package demo holds the Application recording that `crowsnest --demo`
// replays, so anyone can see crowsnest's metrics without a cluster.
package demo

import _ "embed"

//go:embed recording.jsonl
var recording []byte

//go:embed config.yaml
var configYAML []byte

// Recording returns the embedded recording, JSON lines of Application watch
// events as written by `crowsnest record`. Callers must not modify it.
func Recording() []byte { return recording }

// Config returns the environment rules that go with the recording, used by
// --demo when no --config.file is given.
func Config() []byte { return configYAML }
