package probe

import (
	"encoding/json"
	"errors"
	"net"
	"os"
)

// UDPReply is the UDP echo's answer to one datagram: the caller's address as
// the server saw it, and the datagram's content (so that a caller sending
// numbered datagrams can tell which one was answered).
type UDPReply struct {
	Reply
	Data string `json:"data"`
}

// ServeUDP answers every datagram on pc with a UDPReply until pc is closed.
func ServeUDP(pc net.PacketConn) error {
	host, _ := os.Hostname()
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		ip, _, _ := net.SplitHostPort(from.String())
		b, _ := json.Marshal(UDPReply{Reply: Reply{RemoteAddr: from.String(), RemoteIP: ip, LocalAddr: pc.LocalAddr().String(), Hostname: host},
			Data: string(buf[:n])})
		_, _ = pc.WriteTo(b, from) // a lost answer is the caller's to notice
	}
}
