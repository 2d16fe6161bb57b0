package harness

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
)

// reservePodCIDR picks a loopback /16 (127.X.0.0/16, X in 10..249) for
// kwok's pod IPs that no other environment on this machine holds, and keeps
// it reserved with an flock on $TMPDIR/infadapter-e2e-podcidr-X.lock until
// release (the kernel drops the lock if the test binary dies). Without
// this, two environments at once (two helpers, or -p 2) hand out the same
// pod IPs and their fake model servers collide ("address already in use").
func reservePodCIDR() (cidr string, release func(), err error) {
	const lo, n = 10, 240
	start := rand.IntN(n)
	for i := range n {
		x := lo + (start+i)%n
		path := filepath.Join(os.TempDir(), fmt.Sprintf("infadapter-e2e-podcidr-%d.lock", x))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return "", nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return fmt.Sprintf("127.%d.0.0/16", x), func() { f.Close() }, nil
	}
	return "", nil, fmt.Errorf("no free loopback /16 for pod IPs (all %d reserved under %s)", n, os.TempDir())
}
