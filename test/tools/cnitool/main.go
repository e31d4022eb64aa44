// cnitool for weft's tests: drives a network config list through libcni exactly as a container runtime
// does, so the tests see what kubelet/containerd would. Command line and environment follow upstream
// cnitool (add|check|del|gc|status NET NETNS, NETCONFPATH, CNI_PATH, CNI_ARGS, CAP_ARGS, CNI_IFNAME),
// plus CNI_CONTAINERID and CNI_CACHE_DIR so tests can pick the attachment and keep the cache private.
//
// Debian's libcni (v1.1.2) implements the spec up to 1.0.0 and has no GC or STATUS; those two verbs are
// done here the way newer libcni does them (see gc and status below).
package main

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
)

const usage = `usage: cnitool add|check|del|gc|status NET [NETNS]
env: NETCONFPATH (default /etc/cni/net.d), CNI_PATH, CNI_ARGS (K=V;K=V), CAP_ARGS (JSON),
     CNI_IFNAME (default eth0), CNI_CONTAINERID (default cnitool-<hash of NETNS>), CNI_CACHE_DIR,
     CNI_VALID_ATTACHMENTS (gc only: JSON [{"containerID":..,"ifname":..}], default none)`

type attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

func main() {
	if len(os.Args) < 3 {
		fail(fmt.Errorf("%s", usage))
	}
	verb, netName := os.Args[1], os.Args[2]
	netns := ""
	if len(os.Args) > 3 {
		netns = os.Args[3]
	}
	confDir := envOr("NETCONFPATH", "/etc/cni/net.d")
	list, err := libcni.LoadConfList(confDir, netName)
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	rt, err := runtimeConf(netns)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	switch verb {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := result.Print(); err != nil {
			fail(err)
		}
	case "check":
		err = cni.CheckNetworkList(ctx, list, rt)
	case "del":
		err = cni.DelNetworkList(ctx, list, rt)
	case "gc":
		err = gc(ctx, cni, list)
	case "status":
		err = status(ctx, cni, list)
	default:
		err = fmt.Errorf("unknown command %q\n%s", verb, usage)
	}
	if err != nil {
		fail(err)
	}
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// runtimeConf is the attachment the runtime describes: upstream cnitool derives the container ID from the
// netns path; CNI_CONTAINERID overrides it.
func runtimeConf(netns string) (*libcni.RuntimeConf, error) {
	rt := &libcni.RuntimeConf{
		ContainerID: os.Getenv("CNI_CONTAINERID"),
		NetNS:       netns,
		IfName:      envOr("CNI_IFNAME", "eth0"),
	}
	if rt.ContainerID == "" && netns != "" {
		abs, err := filepath.Abs(netns)
		if err != nil {
			return nil, err
		}
		sum := sha512.Sum512([]byte(abs))
		rt.ContainerID = fmt.Sprintf("cnitool-%x", sum[:10])
	}
	if args := os.Getenv("CNI_ARGS"); args != "" {
		for _, pair := range strings.Split(args, ";") {
			kv := strings.SplitN(pair, "=", 2)
			if len(kv) != 2 {
				return nil, fmt.Errorf("invalid CNI_ARGS pair %q", pair)
			}
			rt.Args = append(rt.Args, [2]string{kv[0], kv[1]})
		}
	}
	if caps := os.Getenv("CAP_ARGS"); caps != "" {
		if err := json.Unmarshal([]byte(caps), &rt.CapabilityArgs); err != nil {
			return nil, fmt.Errorf("CAP_ARGS: %w", err)
		}
	}
	return rt, nil
}

// atLeast110 tells whether a list's version allows GC and STATUS; libcni skips both verbs below 1.1.0.
func atLeast110(v string) bool {
	var major, minor, patch int
	fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch)
	return major > 1 || (major == 1 && minor >= 1)
}

// execEach sends one verb to every plugin of the list in order, with name and cniVersion injected as libcni
// does, plus extra keys; it stops at the first error (STATUS) or collects them (GC).
func execEach(ctx context.Context, cni *libcni.CNIConfig, list *libcni.NetworkConfigList, verb string, extra map[string]interface{}, stopAtFirst bool) error {
	var errs []string
	for _, plugin := range list.Plugins {
		inject := map[string]interface{}{"name": list.Name, "cniVersion": list.CNIVersion}
		for k, v := range extra {
			inject[k] = v
		}
		conf, err := libcni.InjectConf(plugin, inject)
		if err == nil {
			var path string
			path, err = invoke.FindInPath(plugin.Network.Type, cni.Path)
			if err == nil {
				args := &invoke.Args{Command: verb, Path: strings.Join(cni.Path, string(os.PathListSeparator))}
				err = invoke.ExecPluginWithoutResult(ctx, path, conf.Bytes, args, nil)
			}
		}
		if err != nil {
			if stopAtFirst {
				return err
			}
			errs = append(errs, fmt.Sprintf("plugin type=%q: %v", plugin.Network.Type, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// gc is libcni v1.2's GCNetworkList: DEL every cached attachment of this network that is not valid, then
// (1.1.0+) send GC with cni.dev/valid-attachments to every plugin.
func gc(ctx context.Context, cni *libcni.CNIConfig, list *libcni.NetworkConfigList) error {
	valid := []attachment{}
	if v := os.Getenv("CNI_VALID_ATTACHMENTS"); v != "" {
		if err := json.Unmarshal([]byte(v), &valid); err != nil {
			return fmt.Errorf("CNI_VALID_ATTACHMENTS: %w", err)
		}
	}
	isValid := map[attachment]bool{}
	for _, a := range valid {
		isValid[a] = true
	}
	var errs []string
	cacheDir := envOr("CNI_CACHE_DIR", libcni.CacheDir)
	files, _ := filepath.Glob(filepath.Join(cacheDir, "results", list.Name+"-*"))
	for _, f := range files {
		var cached struct {
			ContainerID string `json:"containerId"`
			IfName      string `json:"ifName"`
			NetworkName string `json:"networkName"`
		}
		data, err := os.ReadFile(f)
		if err != nil || json.Unmarshal(data, &cached) != nil || cached.NetworkName != list.Name {
			continue
		}
		a := attachment{cached.ContainerID, cached.IfName}
		if isValid[a] {
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: a.ContainerID, IfName: a.IfName}
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, fmt.Sprintf("DEL %s/%s: %v", a.ContainerID, a.IfName, err))
		}
	}
	if atLeast110(list.CNIVersion) {
		if err := execEach(ctx, cni, list, "GC", map[string]interface{}{"cni.dev/valid-attachments": valid}, false); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// status is libcni v1.2's GetStatusNetworkList: STATUS to every plugin in order, first error wins.
func status(ctx context.Context, cni *libcni.CNIConfig, list *libcni.NetworkConfigList) error {
	if !atLeast110(list.CNIVersion) {
		return nil
	}
	return execEach(ctx, cni, list, "STATUS", nil, true)
}

// fail prints a plugin's CNI error object on stdout (so callers can read code and msg) and any error on
// stderr, then exits 1.
func fail(err error) {
	var e *types.Error
	if errors.As(err, &e) {
		out, _ := json.MarshalIndent(e, "", "    ")
		fmt.Println(string(out))
	}
	fmt.Fprintf(os.Stderr, "cnitool: %v\n", err)
	os.Exit(1)
}
