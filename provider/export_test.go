package provider

import "github.com/memconnect/memconnect/connid"

// Expect and Publish let a test write as the Connector does: expect the
// event, write, publish it.
func (c *Connector) Expect(key connid.ID, what string) (undo func()) { return c.expect(key, what) }
func (c *Connector) Publish(key connid.ID, what string)              { c.publish(key, what) }
