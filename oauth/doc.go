// Package oauth is provider-neutral OAuth machinery.
package oauth
