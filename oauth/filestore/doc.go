// Package filestore keeps OAuth grants in a JSON config file, such as
// Honcho's honcho.json, which other processes and the Python agent share:
// the [oauth.GrantStore] of package
// [github.com/memconnect/memconnect/oauth], as package
// [github.com/memconnect/memconnect/oauth/pgstore] is for PostgreSQL.
//
// [Store] is the [oauth.GrantStore] of a JSON config file, laid out as its
// [Layout] says (a provider supplies the layout; this package knows no
// provider):
//
//   - The lock is an exclusive flock(2) on "<config>.lock", the lock the
//     Python agent takes, waited for in the kernel as Python does, so that
//     both get their turns. After taking it, the locked file must still be
//     the one at the path; otherwise it is taken again.
//   - Writes are atomic (a temp file, fsync, rename, fsync of the directory)
//     and keep every other member. A file that does not parse, or that
//     names a member on the path to a grant twice, is never written.
//   - The rotation journal "<config>.rotation" is created before a refresh
//     token is spent (a directory that cannot take it gets no refresh, so
//     nothing is spent that cannot be kept) and holds the server's answer
//     the moment it arrives; the next holder finishes a rotation a killed
//     process left there. A journal without an answer that was started
//     under another lock file, one deleted or replaced since, is a rotation
//     in progress: a holder waits for it instead of spending the same token.
//
// What only the Python agent can still lose: it neither reads the journal
// nor checks its lock file. If "<config>.lock" is deleted or replaced while
// the Python agent holds it or waits for it, Python and a Go process can
// hold locks on two different files, and one can spend a refresh token the
// other is spending. Go processes among themselves are safe.
//
// A Store also holds plain API keys ([oauth.KeyStore]), where the layout
// keeps the access token.
//
// The tests of this package run the refresh engine over a Store: several
// processes, killed ones, the Python agent's lock, faults of the disk.
package filestore
