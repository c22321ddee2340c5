// Package honcho is the Honcho memory provider: its OAuth endpoints (cloud,
// local development and self-hosted), where a profile's grant lives in
// honcho.json, and a profile's connection status.
//
// A profile's grant is the host block "hermes" (the default profile) or
// "hermes_<profile>" of a honcho.json file:
//
//	{"hosts": {"hermes": {"apiKey": "hch-at-...",
//	                      "oauth": {"refreshToken": "hch-rt-...", "expiresAt": 1767225600,
//	                                "clientId": "hermes-agent", "tokenEndpoint": "https://api.honcho.dev/oauth/token",
//	                                "scope": "write", "tokenType": "Bearer"}}}}
//
// The file is read from "<profile home>/honcho.json", else the default
// profile's honcho.json, else "<user home>/.honcho/config.json"; new grants
// are written to "<profile home>/honcho.json".
//
// The package never reads environment variables itself; [FromEnv] turns the
// HONCHO_* variables into options for a program that wants them.
package honcho
