package probe

import (
	"encoding/json"
	"net"
	"testing"
	"time"
)

func TestServeUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeUDP(pc) }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, msg := range []string{"1", "seq 2"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		var r UDPReply
		if err := json.Unmarshal(buf[:n], &r); err != nil {
			t.Fatalf("%v: %s", err, buf[:n])
		}
		if r.Data != msg || r.RemoteIP != "127.0.0.1" || r.RemoteAddr != c.LocalAddr().String() {
			t.Errorf("reply %+v to %q from %s", r, msg, c.LocalAddr())
		}
	}
	pc.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeUDP after Close: %v", err)
	}
}
