package testdevice

import "github.com/plgd-dev/go-coap/v3/message"

// ForgetObservations drops every observation the device holds, as a
// device that rebooted without registering again would.
func (d *Device) ForgetObservations() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.observers)
}

// ObserverTokens are the tokens of the observations the device holds.
func (d *Device) ObserverTokens() []message.Token {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]message.Token, 0, len(d.observers))
	for _, o := range d.observers {
		out = append(out, o.token)
	}
	return out
}
