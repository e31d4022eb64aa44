// gocni for weft's tests: drives the CNI config directory through github.com/containerd/go-cni exactly as
// containerd's CRI plugin does, so the tests see what a Kubernetes node running containerd sees. That
// differs from a libcni caller (test/tools/cnitool) in ways that matter to plugins:
//   - capability args are go-cni's structs, which have no JSON tags: port mappings reach portmap as
//     {"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":""}, DNS as {"Servers":...}, bandwidth
//     as {"IngressRate":...}, IP ranges as {"Subnet":...};
//   - CNI_ARGS carries the CRI labels (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID,
//     K8S_POD_UID, IgnoreUnknown=1) and the capability io.kubernetes.cri.pod-annotations is always set;
//   - the loopback network (plugin "loopback", ifname lo, cniVersion 0.3.1) is set up beside the default
//     network (the first config file of the directory, ifname eth0), concurrently.
//
// What the CRI plugin does, and this client too (containerd pkg/cri/server: service_linux.go initPlatform,
// cniLoadOptions, sandbox_run.go setupPodNetwork/cniNamespaceOpts, sandbox_stop.go teardownPodNetwork):
//
//	cni.New(WithMinNetworkCount(2), WithPluginConfDir(dir), WithPluginMaxConfNum(1), WithPluginDir(dirs))
//	Load(WithLoNetwork, WithDefaultConf)
//	Setup(ctx, id, netns, opts...) / Remove(ctx, id, netns, opts...) with the same opts on both.
//
// The CRI plugin then takes the pod IP from the result's eth0 IP configs (ipv4 first), and fails the
// sandbox when eth0 has none. It does not call Check; go-cni 1.1.7 has it, so the client offers it, but
// with the loopback network (0.3.1) libcni refuses CHECK before running any plugin. go-cni 1.1.7's Status
// sends nothing to the plugins: it only says whether both networks loaded.
//
// A failed Setup is reported as it is; the CRI plugin would then call Remove (tests do that themselves).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	cni "github.com/containerd/go-cni"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

const usage = `usage: gocni setup|remove|check NETNS CONTAINER_ID
       gocni status
env: NETCONFPATH (conf dir, default /etc/cni/net.d), CNI_PATH (plugin dirs, colon list, default
     /opt/cni/bin), CNI_CACHE_DIR (libcni's result cache, default /var/lib/cni), GOCNI_POD (JSON, the pod
     sandbox config: {"metadata":{"name","namespace","uid"},"annotations":{..},"portMappings":[{"protocol":
     "TCP","containerPort":80,"hostPort":8080,"hostIp":""}],"dnsConfig":{"servers","searches","options"},
     "bandwidth":{"ingressRate","egressRate"},"ipRanges":[{"subnet","rangeStart","rangeEnd","gateway"}]})`

// podAnnotations is the capability the CRI plugin always passes (containerd pkg/cri/annotations).
const podAnnotations = "io.kubernetes.cri.pod-annotations"

// podConfig is the part of a CRI PodSandboxConfig that the CRI plugin turns into go-cni options.
type podConfig struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	} `json:"metadata"`
	Annotations  map[string]string `json:"annotations"`
	PortMappings []criPortMapping  `json:"portMappings"`
	DNSConfig    *struct {
		Servers  []string `json:"servers"`
		Searches []string `json:"searches"`
		Options  []string `json:"options"`
	} `json:"dnsConfig"`
	// Bandwidth in bit/s; the CRI plugin reads it from the kubernetes.io/{ingress,egress}-bandwidth
	// annotations. Given here already converted.
	Bandwidth *struct {
		IngressRate uint64 `json:"ingressRate"`
		EgressRate  uint64 `json:"egressRate"`
	} `json:"bandwidth"`
	// The CRI plugin does not pass ipRanges; other go-cni callers do (WithCapabilityIPRanges).
	IPRanges []cni.IPRanges `json:"ipRanges"`
}

// criPortMapping is a CRI PortMapping; protocol is the enum's name (TCP, UDP, SCTP; empty is TCP).
type criPortMapping struct {
	Protocol      string `json:"protocol"`
	ContainerPort int32  `json:"containerPort"`
	HostPort      int32  `json:"hostPort"`
	HostIP        string `json:"hostIp"`
}

func main() {
	if len(os.Args) < 2 {
		fail(errors.New(usage), nil)
	}
	verb := os.Args[1]
	switch {
	case verb == "status" && len(os.Args) == 2:
	case (verb == "setup" || verb == "remove" || verb == "check") && len(os.Args) == 4:
	default:
		fail(fmt.Errorf("bad command line %q\n%s", os.Args[1:], usage), nil)
	}
	// libcni's default cache dir, overridable so that tests keep their cached results private; go-cni
	// builds its libcni instance without a cache dir of its own.
	if dir := os.Getenv("CNI_CACHE_DIR"); dir != "" {
		libcni.CacheDir = dir
	}
	plugin, err := load()
	if verb == "status" {
		status(plugin, err)
		return
	}
	if err != nil {
		fail(err, nil)
	}
	netns, id := os.Args[2], os.Args[3]
	opts, err := namespaceOpts(id)
	if err != nil {
		fail(err, nil)
	}
	ctx := context.Background()
	switch verb {
	case "setup":
		setup(ctx, plugin, id, netns, opts)
	case "remove":
		err = plugin.Remove(ctx, id, netns, opts...)
	case "check":
		err = plugin.Check(ctx, id, netns, opts...)
	}
	if err != nil {
		fail(err, nil)
	}
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// load creates the go-cni instance and loads the networks as the CRI plugin does at start and on every
// change of the conf dir. The instance is returned even when loading failed (Status reports that).
func load() (cni.CNI, error) {
	plugin, err := cni.New(
		cni.WithMinNetworkCount(2),
		cni.WithPluginConfDir(envOr("NETCONFPATH", cni.DefaultNetDir)),
		cni.WithPluginMaxConfNum(1),
		cni.WithPluginDir(filepath.SplitList(envOr("CNI_PATH", cni.DefaultCNIDir))),
	)
	if err != nil {
		return nil, err
	}
	return plugin, plugin.Load(cni.WithLoNetwork, cni.WithDefaultConf)
}

// namespaceOpts is the CRI plugin's cniNamespaceOpts for GOCNI_POD: labels and annotations always, the
// other capabilities only when the pod has them.
func namespaceOpts(id string) ([]cni.NamespaceOpts, error) {
	var pod podConfig
	if s := os.Getenv("GOCNI_POD"); s != "" {
		if err := json.Unmarshal([]byte(s), &pod); err != nil {
			return nil, fmt.Errorf("GOCNI_POD: %w", err)
		}
	}
	opts := []cni.NamespaceOpts{
		cni.WithLabels(map[string]string{
			"K8S_POD_NAMESPACE":          pod.Metadata.Namespace,
			"K8S_POD_NAME":               pod.Metadata.Name,
			"K8S_POD_INFRA_CONTAINER_ID": id,
			"K8S_POD_UID":                pod.Metadata.UID,
			"IgnoreUnknown":              "1",
		}),
		cni.WithCapability(podAnnotations, pod.Annotations),
	}
	// toCNIPortMappings: mappings without a host port are not the runtime's business.
	var ports []cni.PortMapping
	for _, m := range pod.PortMappings {
		if m.HostPort <= 0 {
			continue
		}
		ports = append(ports, cni.PortMapping{
			HostPort:      m.HostPort,
			ContainerPort: m.ContainerPort,
			Protocol:      strings.ToLower(orDefault(m.Protocol, "TCP")),
			HostIP:        m.HostIP,
		})
	}
	if len(ports) > 0 {
		opts = append(opts, cni.WithCapabilityPortMap(ports))
	}
	// toCNIBandWidth: the burst is always MaxUint32.
	if bw := pod.Bandwidth; bw != nil && (bw.IngressRate > 0 || bw.EgressRate > 0) {
		b := cni.BandWidth{}
		if bw.IngressRate > 0 {
			b.IngressRate, b.IngressBurst = bw.IngressRate, math.MaxUint32
		}
		if bw.EgressRate > 0 {
			b.EgressRate, b.EgressBurst = bw.EgressRate, math.MaxUint32
		}
		opts = append(opts, cni.WithCapabilityBandWidth(b))
	}
	if d := pod.DNSConfig; d != nil {
		opts = append(opts, cni.WithCapabilityDNS(cni.DNS{Servers: d.Servers, Searches: d.Searches, Options: d.Options}))
	}
	if len(pod.IPRanges) > 0 {
		opts = append(opts, cni.WithCapabilityIPRanges(pod.IPRanges))
	}
	return opts, nil
}

func orDefault(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

// setupOutput is what `setup` prints: the pod IPs the CRI plugin would record, go-cni's Result as
// containerd logs it (json.Marshal of cni.Result) and the raw per-network results (loopback first).
type setupOutput struct {
	PodIP         string      `json:"podIP"`
	AdditionalIPs []string    `json:"additionalIPs"`
	Result        *cni.Result `json:"result"`
	Raw           interface{} `json:"raw"`
}

const defaultIfName = "eth0"

func setup(ctx context.Context, plugin cni.CNI, id, netns string, opts []cni.NamespaceOpts) {
	result, err := plugin.Setup(ctx, id, netns, opts...)
	if err != nil {
		fail(err, nil)
	}
	out := setupOutput{Result: result, Raw: result.Raw(), AdditionalIPs: []string{}}
	configs, ok := result.Interfaces[defaultIfName]
	if !ok || len(configs.IPConfigs) == 0 {
		fail(fmt.Errorf("failed to find network info for sandbox %q", id), out)
	}
	// selectPodIPs with the default preference: the first IPv4 address, the others in order after it.
	first := 0
	for i, c := range configs.IPConfigs {
		if c.IP.To4() != nil {
			first = i
			break
		}
	}
	out.PodIP = configs.IPConfigs[first].IP.String()
	for i, c := range configs.IPConfigs {
		if i != first {
			out.AdditionalIPs = append(out.AdditionalIPs, c.IP.String())
		}
	}
	printJSON(out)
}

// status prints which networks loaded (name, cniVersion, ifname) and fails when go-cni's Status does.
func status(plugin cni.CNI, loadErr error) {
	type network struct {
		Name       string `json:"name"`
		CNIVersion string `json:"cniVersion"`
		IfName     string `json:"ifName"`
	}
	out := struct {
		Networks []network `json:"networks"`
		LoadErr  string    `json:"loadError,omitempty"`
	}{Networks: []network{}}
	if loadErr != nil {
		out.LoadErr = loadErr.Error()
	}
	if plugin == nil {
		fail(loadErr, out)
	}
	for _, n := range plugin.GetConfig().Networks {
		out.Networks = append(out.Networks, network{n.Config.Name, n.Config.CNIVersion, n.IFName})
	}
	if err := plugin.Status(); err != nil {
		if loadErr != nil {
			err = fmt.Errorf("%w (load: %v)", err, loadErr)
		}
		fail(err, out)
	}
	printJSON(out)
}

func printJSON(v interface{}) {
	data, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		fail(err, nil)
	}
	fmt.Println(string(data))
}

// fail prints {"error": text} on stdout, plus the plugin's CNI error (code, msg, details) when there is
// one and what was known so far (`partial`), and the text on stderr; then exits 1.
func fail(err error, partial interface{}) {
	doc := map[string]interface{}{"error": err.Error()}
	var e *types.Error
	if errors.As(err, &e) {
		doc["code"], doc["msg"], doc["details"] = e.Code, e.Msg, e.Details
	}
	if partial != nil {
		doc["partial"] = partial
	}
	data, _ := json.MarshalIndent(doc, "", "    ")
	fmt.Println(string(data))
	fmt.Fprintf(os.Stderr, "gocni: %v\n", err)
	os.Exit(1)
}
