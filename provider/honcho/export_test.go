package honcho

// IsLoopbackURL is isLoopbackURL, for the tests.
var IsLoopbackURL = isLoopbackURL
