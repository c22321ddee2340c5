// Command server is an existing web server that mounts the memconnect router.
package main

import "fmt"

func main() { fmt.Println("memconnect: coming soon") }
