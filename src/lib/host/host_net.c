/*
 * host_net.c - outbound network access for a sandbox (`limits --network
 * outbound`): a veth pair between the host and the sandbox's network
 * namespace, and NAT.
 *
 * A sandbox starts with its own loopback only.  Outbound access adds:
 *   host side   psv<uid in hex>   A.B.x.(4k+1)/30    (A.B = the configured /16,
 *   sandbox     eth0              A.B.x.(4k+2)/30     k from the uid)
 *   default route of the sandbox via the host side,
 *   net.ipv4.ip_forward = 1 (host-wide; left on when the last link goes),
 *   iptables rules tagged "projstore:<user>":
 *     nat    POSTROUTING  -s SANDBOX ! -o psvX        MASQUERADE
 *     filter INPUT        -i psvX                      DROP   (nothing on the host itself,
 *                                                             not its API, database, glusterd)
 *     filter FORWARD      -i psvX -o psv+              DROP   (no sandbox to sandbox)
 *                         -i psvX                      ACCEPT
 *                         -o psvX ESTABLISHED,RELATED  ACCEPT
 *                         -o psvX                      DROP   (nothing comes in unasked)
 * Two projects whose uids give the same /30 on one host collide: the second
 * is refused.  The pieces are made with `ip`, `nsenter` and `iptables`;
 * detaching deletes the link (both ends) and the rules.
 */
#define _GNU_SOURCE
#include "host_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct link {
	char ifname[IF_NAMESIZE];
	char host_ip[32];
	char sb_ip[32];
	char tag[64];
};

static int link_of(const struct ps_host_config *cfg, const char *user, int64_t uid,
		   struct link *l, struct ps_error *err)
{
	const char *prefix = cfg && cfg->net_prefix ? cfg->net_prefix : getenv("PROJSTORE_NET_PREFIX");
	if (!prefix || !*prefix)
		prefix = "100.72";
	unsigned a, b;
	char extra;
	if (sscanf(prefix, "%u.%u%c", &a, &b, &extra) != 2 || a > 255 || b > 255)
		return ps_err(err, PS_EINVAL, "invalid network prefix '%s' (want A.B)", prefix);
	unsigned k = (unsigned)(uid % 16384) * 4;
	snprintf(l->ifname, sizeof(l->ifname), "psv%llx", (unsigned long long)uid);
	snprintf(l->host_ip, sizeof(l->host_ip), "%u.%u.%u.%u", a, b, k >> 8, (k & 255) + 1);
	snprintf(l->sb_ip, sizeof(l->sb_ip), "%u.%u.%u.%u", a, b, k >> 8, (k & 255) + 2);
	snprintf(l->tag, sizeof(l->tag), "projstore:%s", user ? user : "");
	return PS_OK;
}

int ps_net_attached(int64_t uid)
{
	char n[IF_NAMESIZE];
	snprintf(n, sizeof(n), "psv%llx", (unsigned long long)uid);
	return if_nametoindex(n) != 0;
}

/* 1 if addr is on any interface of the host */
static int addr_in_use(const char *ip)
{
	struct ifaddrs *ifa, *i;
	struct in_addr want;
	int found = 0;
	if (inet_pton(AF_INET, ip, &want) != 1 || getifaddrs(&ifa) != 0)
		return 0;
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == want.s_addr)
			found = 1;
	freeifaddrs(ifa);
	return found;
}

/* the iptables rules: op is "-I" (add, at the top) or "-D" */
static int rules(const struct link *l, const char *op, int stop_on_error, struct ps_error *err)
{
	char sb[40];
	snprintf(sb, sizeof(sb), "%s/32", l->sb_ip);
	const char *ifn = l->ifname, *tag = l->tag;
	/* inserted at the top one after the other: listed bottom-up */
	const char *const r[][20] = {
		{ "iptables", "-w", "-t", "nat", op, "POSTROUTING", "-s", sb, "!", "-o", ifn, "-m",
		  "comment", "--comment", tag, "-j", "MASQUERADE", NULL },
		{ "iptables", "-w", op, "INPUT", "-i", ifn, "-m", "comment", "--comment", tag, "-j",
		  "DROP", NULL },
		{ "iptables", "-w", op, "FORWARD", "-o", ifn, "-m", "comment", "--comment", tag, "-j",
		  "DROP", NULL },
		{ "iptables", "-w", op, "FORWARD", "-o", ifn, "-m", "conntrack", "--ctstate",
		  "RELATED,ESTABLISHED", "-m", "comment", "--comment", tag, "-j", "ACCEPT", NULL },
		{ "iptables", "-w", op, "FORWARD", "-i", ifn, "-m", "comment", "--comment", tag, "-j",
		  "ACCEPT", NULL },
		{ "iptables", "-w", op, "FORWARD", "-i", ifn, "-o", "psv+", "-m", "comment",
		  "--comment", tag, "-j", "DROP", NULL },
	};
	int rc = PS_OK;
	for (size_t i = 0; i < PS_ARRAY_LEN(r); i++) {
		int x = ps_host_exec(r[i], stop_on_error ? err : NULL);
		if (x != PS_OK && stop_on_error)
			return x;
		if (x != PS_OK)
			rc = x;
	}
	return rc;
}

int ps_net_attach(const struct ps_host_config *cfg, const char *user, int64_t uid, pid_t pid,
		  struct ps_error *err)
{
	struct link l;
	int rc = link_of(cfg, user, uid, &l, err);
	if (rc != PS_OK)
		return rc;
	if (if_nametoindex(l.ifname) != 0)
		return PS_OK;
	if (addr_in_use(l.host_ip))
		return ps_err(err, PS_EEXISTS,
			      "project user %s: network address %s is already in use on this host "
			      "(another project's link?): refusing outbound access",
			      user, l.host_ip);
	char pidns[64], hostcidr[40], sbcidr[40];
	snprintf(pidns, sizeof(pidns), "--net=/proc/%d/ns/net", (int)pid);
	snprintf(hostcidr, sizeof(hostcidr), "%s/30", l.host_ip);
	snprintf(sbcidr, sizeof(sbcidr), "%s/30", l.sb_ip);
	char pidstr[32];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	{
		const char *a[] = { "ip", "link", "add", l.ifname, "type", "veth", "peer", "name", "eth0",
			      "netns", pidstr, NULL };
		if ((rc = ps_host_exec(a, err)) != PS_OK)
			return rc;
	}
	const char *steps[][12] = {
		{ "ip", "addr", "add", hostcidr, "dev", l.ifname, NULL },
		{ "ip", "link", "set", l.ifname, "up", NULL },
		{ "nsenter", pidns, "ip", "addr", "add", sbcidr, "dev", "eth0", NULL },
		{ "nsenter", pidns, "ip", "link", "set", "eth0", "up", NULL },
		{ "nsenter", pidns, "ip", "route", "add", "default", "via", l.host_ip, NULL },
	};
	for (size_t i = 0; i < PS_ARRAY_LEN(steps); i++)
		if ((rc = ps_host_exec(steps[i], err)) != PS_OK)
			goto fail;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "w");
	if (!f || fputs("1", f) < 0 || fclose(f) != 0) {
		rc = ps_err_sys(err, "cannot enable IPv4 forwarding");
		goto fail;
	}
	if ((rc = rules(&l, "-I", 1, err)) != PS_OK)
		goto fail;
	return PS_OK;
fail:
	ps_net_detach(cfg, user, uid, NULL);
	return rc;
}

int ps_net_detach(const struct ps_host_config *cfg, const char *user, int64_t uid,
		  struct ps_error *err)
{
	struct link l;
	int rc = link_of(cfg, user, uid, &l, err);
	if (rc != PS_OK)
		return rc;
	if (if_nametoindex(l.ifname) != 0) {
		const char *a[] = { "ip", "link", "del", l.ifname, NULL };
		rc = ps_host_exec(a, err);
	}
	/* the rules go whether the link was there or not (a crash between the
	 * two leaves rules without a link); a missing rule is no error */
	const char *probe[] = { "iptables", "-w", "-t", "nat", "-S", "POSTROUTING", NULL };
	if (ps_host_exec(probe, NULL) == PS_OK) {
		for (int i = 0; i < 8; i++) /* duplicates of an interrupted attach */
			if (rules(&l, "-D", 0, NULL) != PS_OK)
				break;
	}
	return rc;
}
