/*
 * A stand-in for libipvs that keeps the "kernel" table in a text file, so that ipvsadm 1.31's
 * own ipvsadm.c can be compiled and run on a machine without the ip_vs module. It is the
 * oracle for rvs's golden files: every listing, error text and exit code in testdata/ipvsadm/
 * comes from the real ipvsadm.c printing this table. See README.md for the build recipe.
 *
 * State file: $IPVS_FAKE_STATE (one record per line, dests follow their service):
 *   timeout TCP TCPFIN UDP
 *   svc AF PROTO ADDR PORT FWMARK SCHED FLAGS TIMEOUT NETMASK PE STATS*10
 *   dest AF ADDR PORT CONN_FLAGS WEIGHT U L ACTIVE INACTIVE PERSIST TUN_TYPE TUN_PORT TUN_FLAGS STATS*10
 *   daemon STATE IFN SYNCID MAXLEN PORT TTL MCAST_AF GROUP
 * Addresses are printed with inet_ntop, ports in host order, NETMASK as the raw 32-bit value,
 * PE as "-" when unset.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libipvs.h"

struct ip_vs_getinfo ipvs_info;

#define MAX_SVC 256
#define MAX_DEST 256

struct fake_svc {
	ipvs_service_entry_t e;
	int ndests;
	ipvs_dest_entry_t d[MAX_DEST];
};

static struct fake_svc svcs[MAX_SVC];
static int nsvcs;
static ipvs_timeout_t timeouts = { 900, 120, 300 };
static ipvs_daemon_t daemons[2];
static const char *last_op = "";

static const char *state_path(void)
{
	const char *p = getenv("IPVS_FAKE_STATE");
	return p ? p : "ipvs.state";
}

static void put_addr(FILE *f, int af, const union nf_inet_addr *a)
{
	char buf[INET6_ADDRSTRLEN];
	inet_ntop(af, a, buf, sizeof(buf));
	fprintf(f, " %s", buf);
}

static int get_addr(const char *s, int af, union nf_inet_addr *a)
{
	memset(a, 0, sizeof(*a));
	return inet_pton(af, s, a) == 1 ? 0 : -1;
}

static void put_stats(FILE *f, const struct ip_vs_stats64 *s)
{
	fprintf(f, " %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
		s->conns, s->inpkts, s->outpkts, s->inbytes, s->outbytes,
		s->cps, s->inpps, s->outpps, s->inbps, s->outbps);
}

static int get_stats(char **save, struct ip_vs_stats64 *s)
{
	unsigned long long *v[] = { &s->conns, &s->inpkts, &s->outpkts, &s->inbytes,
		&s->outbytes, &s->cps, &s->inpps, &s->outpps, &s->inbps, &s->outbps };
	for (unsigned i = 0; i < 10; i++) {
		char *t = strtok_r(NULL, " \n", save);
		if (!t)
			return -1;
		*v[i] = strtoull(t, NULL, 10);
	}
	return 0;
}

#define NEXT() (t = strtok_r(NULL, " \n", &save))

static void load(void)
{
	FILE *f = fopen(state_path(), "r");
	char line[2048];
	struct fake_svc *cur = NULL;

	nsvcs = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *save, *t = strtok_r(line, " \n", &save);
		if (!t)
			continue;
		if (!strcmp(t, "timeout")) {
			timeouts.tcp_timeout = atoi(NEXT());
			timeouts.tcp_fin_timeout = atoi(NEXT());
			timeouts.udp_timeout = atoi(NEXT());
		} else if (!strcmp(t, "svc")) {
			cur = &svcs[nsvcs++];
			memset(cur, 0, sizeof(*cur));
			ipvs_service_entry_t *e = &cur->e;
			e->af = atoi(NEXT());
			e->protocol = atoi(NEXT());
			get_addr(NEXT(), e->af, &e->addr);
			e->__addr_v4 = e->addr.ip;
			e->port = htons(atoi(NEXT()));
			e->fwmark = strtoul(NEXT(), NULL, 10);
			snprintf(e->sched_name, sizeof(e->sched_name), "%s", NEXT());
			e->flags = strtoul(NEXT(), NULL, 10);
			e->timeout = strtoul(NEXT(), NULL, 10);
			e->netmask = strtoul(NEXT(), NULL, 10);
			NEXT();
			if (strcmp(t, "-"))
				snprintf(e->pe_name, sizeof(e->pe_name), "%s", t);
			get_stats(&save, &e->stats64);
		} else if (!strcmp(t, "dest") && cur) {
			ipvs_dest_entry_t *d = &cur->d[cur->ndests++];
			memset(d, 0, sizeof(*d));
			d->af = atoi(NEXT());
			get_addr(NEXT(), d->af, &d->addr);
			d->__addr_v4 = d->addr.ip;
			d->port = htons(atoi(NEXT()));
			d->conn_flags = strtoul(NEXT(), NULL, 10);
			d->weight = atoi(NEXT());
			d->u_threshold = strtoul(NEXT(), NULL, 10);
			d->l_threshold = strtoul(NEXT(), NULL, 10);
			d->activeconns = strtoul(NEXT(), NULL, 10);
			d->inactconns = strtoul(NEXT(), NULL, 10);
			d->persistconns = strtoul(NEXT(), NULL, 10);
			d->tun_type = atoi(NEXT());
			d->tun_port = htons(atoi(NEXT()));
			d->tun_flags = atoi(NEXT());
			get_stats(&save, &d->stats64);
			cur->e.num_dests = cur->ndests;
		} else if (!strcmp(t, "daemon")) {
			int state = atoi(NEXT());
			ipvs_daemon_t *dm = &daemons[state == IP_VS_STATE_MASTER ? 0 : 1];
			memset(dm, 0, sizeof(*dm));
			dm->state = state;
			snprintf(dm->mcast_ifn, sizeof(dm->mcast_ifn), "%s", NEXT());
			dm->syncid = atoi(NEXT());
			dm->sync_maxlen = atoi(NEXT());
			dm->mcast_port = atoi(NEXT());
			dm->mcast_ttl = atoi(NEXT());
			dm->mcast_af = atoi(NEXT());
			NEXT();
			if (dm->mcast_af)
				get_addr(t, dm->mcast_af, &dm->mcast_group);
		}
	}
	fclose(f);
}

static void save(void)
{
	FILE *f = fopen(state_path(), "w");
	if (!f)
		return;
	fprintf(f, "timeout %d %d %d\n", timeouts.tcp_timeout, timeouts.tcp_fin_timeout,
		timeouts.udp_timeout);
	for (int i = 0; i < nsvcs; i++) {
		ipvs_service_entry_t *e = &svcs[i].e;
		fprintf(f, "svc %d %d", e->af, e->protocol);
		put_addr(f, e->af, &e->addr);
		fprintf(f, " %d %u %s %u %u %u %s", ntohs(e->port), e->fwmark, e->sched_name,
			e->flags, e->timeout, e->netmask, e->pe_name[0] ? e->pe_name : "-");
		put_stats(f, &e->stats64);
		fprintf(f, "\n");
		for (int j = 0; j < svcs[i].ndests; j++) {
			ipvs_dest_entry_t *d = &svcs[i].d[j];
			fprintf(f, "dest %d", d->af);
			put_addr(f, d->af, &d->addr);
			fprintf(f, " %d %u %d %u %u %u %u %u %d %d %d", ntohs(d->port), d->conn_flags,
				d->weight, d->u_threshold, d->l_threshold, d->activeconns,
				d->inactconns, d->persistconns, d->tun_type, ntohs(d->tun_port),
				d->tun_flags);
			put_stats(f, &d->stats64);
			fprintf(f, "\n");
		}
	}
	for (int i = 0; i < 2; i++) {
		ipvs_daemon_t *dm = &daemons[i];
		if (!dm->state)
			continue;
		fprintf(f, "daemon %d %s %d %d %d %d %d", dm->state, dm->mcast_ifn, dm->syncid,
			dm->sync_maxlen, dm->mcast_port, dm->mcast_ttl, dm->mcast_af);
		if (dm->mcast_af)
			put_addr(f, dm->mcast_af, &dm->mcast_group);
		else
			fprintf(f, " -");
		fprintf(f, "\n");
	}
	fclose(f);
}

static int fail_with(int err)
{
	errno = err;
	return -1;
}

static struct fake_svc *find_svc(u_int32_t fwmark, u_int16_t af, u_int16_t protocol,
				 const union nf_inet_addr *addr, u_int16_t port)
{
	for (int i = 0; i < nsvcs; i++) {
		ipvs_service_entry_t *e = &svcs[i].e;
		if (fwmark) {
			if (e->fwmark == fwmark && e->af == af)
				return &svcs[i];
		} else if (!e->fwmark && e->af == af && e->protocol == protocol &&
			   e->port == port && !memcmp(&e->addr, addr, sizeof(*addr))) {
			return &svcs[i];
		}
	}
	return NULL;
}

static struct fake_svc *find_user_svc(ipvs_service_t *s)
{
	return find_svc(s->fwmark, s->af, s->protocol, &s->addr, s->port);
}

static int find_dest(struct fake_svc *s, ipvs_dest_t *d)
{
	for (int j = 0; j < s->ndests; j++)
		if (s->d[j].af == d->af && s->d[j].port == d->port &&
		    !memcmp(&s->d[j].addr, &d->addr, sizeof(d->addr)))
			return j;
	return -1;
}

static int known_sched(const char *name)
{
	const char *all[] = { "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed",
			      "nq", "fo", "ovf", "mh", "twos",
			      /* no scheduler: kernels since 4.x take it (ip_vs_add_service) */
			      "none" };
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!strcmp(name, all[i]))
			return 1;
	return 0;
}

static int check_svc_options(ipvs_service_t *s)
{
	if (!known_sched(s->sched_name))
		return fail_with(ENOENT);
	if (s->pe_name[0] && strcmp(s->pe_name, "sip"))
		return fail_with(ENOENT);
	return 0;
}

int ipvs_init(void) { ipvs_info.version = 0x010201; ipvs_info.size = 4096; load(); return 0; }
int ipvs_getinfo(void) { return 0; }
unsigned int ipvs_version(void) { return ipvs_info.version; }
void ipvs_close(void) {}

int ipvs_flush(void) { last_op = "flush"; nsvcs = 0; save(); return 0; }

int ipvs_add_service(ipvs_service_t *s)
{
	last_op = "add_service";
	if (find_user_svc(s))
		return fail_with(EEXIST);
	if (check_svc_options(s))
		return -1;
	struct fake_svc *n = &svcs[nsvcs++];
	memset(n, 0, sizeof(*n));
	n->e.af = s->af;
	/* The kernel reports no protocol for a fwmark service. */
	n->e.protocol = s->fwmark ? 0 : s->protocol;
	n->e.addr = s->addr;
	n->e.__addr_v4 = s->addr.ip;
	n->e.port = s->port;
	n->e.fwmark = s->fwmark;
	memcpy(n->e.sched_name, s->sched_name, sizeof(n->e.sched_name));
	n->e.flags = s->flags;
	n->e.timeout = s->timeout;
	n->e.netmask = s->netmask;
	memcpy(n->e.pe_name, s->pe_name, sizeof(n->e.pe_name));
	save();
	return 0;
}

int ipvs_update_service(ipvs_service_t *s)
{
	last_op = "update_service";
	struct fake_svc *f = find_user_svc(s);
	if (!f)
		return fail_with(ESRCH);
	if (check_svc_options(s))
		return -1;
	memcpy(f->e.sched_name, s->sched_name, sizeof(f->e.sched_name));
	f->e.flags = s->flags;
	f->e.timeout = s->timeout;
	f->e.netmask = s->netmask;
	memcpy(f->e.pe_name, s->pe_name, sizeof(f->e.pe_name));
	save();
	return 0;
}

int ipvs_del_service(ipvs_service_t *s)
{
	last_op = "del_service";
	struct fake_svc *f = find_user_svc(s);
	if (!f)
		return fail_with(ESRCH);
	int i = f - svcs;
	memmove(&svcs[i], &svcs[i + 1], (nsvcs - i - 1) * sizeof(svcs[0]));
	nsvcs--;
	save();
	return 0;
}

static void zero(struct fake_svc *f)
{
	memset(&f->e.stats64, 0, sizeof(f->e.stats64));
	for (int j = 0; j < f->ndests; j++)
		memset(&f->d[j].stats64, 0, sizeof(f->d[j].stats64));
}

int ipvs_zero_service(ipvs_service_t *s)
{
	last_op = "zero_service";
	/* libipvs sends no service for the zero address and port, whatever the protocol, and
	 * the kernel then zeroes them all. */
	if (!s->fwmark && !s->port && !memcmp(&s->addr, &in6addr_any, sizeof(in6addr_any))) {
		for (int i = 0; i < nsvcs; i++)
			zero(&svcs[i]);
	} else {
		struct fake_svc *f = find_user_svc(s);
		if (!f)
			return fail_with(ESRCH);
		zero(f);
	}
	save();
	return 0;
}

/* ip_vs_new_dest: IPv4 that inet_addr_type calls unicast or local (not 0.0.0.0/8,
 * multicast or 255.255.255.255), IPv6 that is unicast and not link-local. */
static int unicast_dest(const ipvs_dest_t *d)
{
	if (d->af == AF_INET6) {
		const unsigned char *b = d->addr.in6.s6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED(&d->addr.in6) || b[0] == 0xff)
			return 0;
		return !(b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
	}
	unsigned int a = ntohl(d->addr.ip);
	return (a >> 24) != 0 && (a >> 28) != 0xe && a != 0xffffffffu;
}

int ipvs_add_dest(ipvs_service_t *s, ipvs_dest_t *d)
{
	last_op = "add_dest";
	struct fake_svc *f = find_user_svc(s);
	if (!f)
		return fail_with(ESRCH);
	if (d->weight < 0)
		return fail_with(EINVAL);
	if (!unicast_dest(d))
		return fail_with(EINVAL);
	if (d->l_threshold > d->u_threshold)
		return fail_with(ERANGE);
	if (find_dest(f, d) >= 0)
		return fail_with(EEXIST);
	memmove(&f->d[1], &f->d[0], f->ndests * sizeof(f->d[0]));
	ipvs_dest_entry_t *e = &f->d[0];
	memset(e, 0, sizeof(*e));
	e->af = d->af;
	e->addr = d->addr;
	e->__addr_v4 = d->addr.ip;
	e->port = d->port;
	e->conn_flags = d->conn_flags;
	e->weight = d->weight;
	e->u_threshold = d->u_threshold;
	e->l_threshold = d->l_threshold;
	e->tun_type = d->tun_type;
	e->tun_port = d->tun_port;
	e->tun_flags = d->tun_flags;
	f->ndests++;
	f->e.num_dests = f->ndests;
	save();
	return 0;
}

int ipvs_update_dest(ipvs_service_t *s, ipvs_dest_t *d)
{
	last_op = "update_dest";
	struct fake_svc *f = find_user_svc(s);
	if (!f)
		return fail_with(ESRCH);
	if (d->weight < 0)
		return fail_with(EINVAL);
	if (d->l_threshold > d->u_threshold)
		return fail_with(ERANGE);
	int j = find_dest(f, d);
	if (j < 0)
		return fail_with(ENOENT);
	ipvs_dest_entry_t *e = &f->d[j];
	e->conn_flags = d->conn_flags;
	e->weight = d->weight;
	e->u_threshold = d->u_threshold;
	e->l_threshold = d->l_threshold;
	e->tun_type = d->tun_type;
	e->tun_port = d->tun_port;
	e->tun_flags = d->tun_flags;
	save();
	return 0;
}

int ipvs_del_dest(ipvs_service_t *s, ipvs_dest_t *d)
{
	last_op = "del_dest";
	struct fake_svc *f = find_user_svc(s);
	if (!f)
		return fail_with(ESRCH);
	int j = find_dest(f, d);
	if (j < 0)
		return fail_with(ENOENT);
	memmove(&f->d[j], &f->d[j + 1], (f->ndests - j - 1) * sizeof(f->d[0]));
	f->ndests--;
	f->e.num_dests = f->ndests;
	save();
	return 0;
}

int ipvs_set_timeout(ipvs_timeout_t *to)
{
	last_op = "set_timeout";
	if (to->tcp_timeout)
		timeouts.tcp_timeout = to->tcp_timeout;
	if (to->tcp_fin_timeout)
		timeouts.tcp_fin_timeout = to->tcp_fin_timeout;
	if (to->udp_timeout)
		timeouts.udp_timeout = to->udp_timeout;
	save();
	return 0;
}

int ipvs_start_daemon(ipvs_daemon_t *dm)
{
	last_op = "start_daemon";
	ipvs_daemon_t *slot = &daemons[dm->state == IP_VS_STATE_MASTER ? 0 : 1];
	if (slot->state)
		return fail_with(EEXIST);
	*slot = *dm;
	save();
	return 0;
}

int ipvs_stop_daemon(ipvs_daemon_t *dm)
{
	last_op = "stop_daemon";
	ipvs_daemon_t *slot = &daemons[dm->state == IP_VS_STATE_MASTER ? 0 : 1];
	if (!slot->state)
		return fail_with(ESRCH);
	memset(slot, 0, sizeof(*slot));
	save();
	return 0;
}

struct ip_vs_get_services *ipvs_get_services(void)
{
	last_op = "get_services";
	struct ip_vs_get_services *g =
		calloc(1, sizeof(*g) + (nsvcs + 1) * sizeof(ipvs_service_entry_t));
	g->num_services = nsvcs;
	for (int i = 0; i < nsvcs; i++)
		g->entrytable[i] = svcs[i].e;
	return g;
}

struct ip_vs_get_dests *ipvs_get_dests(ipvs_service_entry_t *svc)
{
	last_op = "get_dests";
	struct fake_svc *f = find_svc(svc->fwmark, svc->af, svc->protocol, &svc->addr, svc->port);
	int n = f ? f->ndests : 0;
	struct ip_vs_get_dests *g = calloc(1, sizeof(*g) + (n + 1) * sizeof(ipvs_dest_entry_t));
	g->num_dests = n;
	for (int j = 0; j < n; j++)
		g->entrytable[j] = f->d[j];
	return g;
}

ipvs_service_entry_t *ipvs_get_service(__u32 fwmark, __u16 af, __u16 protocol,
				       union nf_inet_addr addr, __u16 port)
{
	last_op = "get_service";
	struct fake_svc *f = find_svc(fwmark, af, protocol, &addr, port);
	if (!f) {
		errno = ESRCH;
		return NULL;
	}
	ipvs_service_entry_t *e = malloc(sizeof(*e));
	*e = f->e;
	return e;
}

ipvs_timeout_t *ipvs_get_timeout(void)
{
	ipvs_timeout_t *t = malloc(sizeof(*t));
	*t = timeouts;
	return t;
}

ipvs_daemon_t *ipvs_get_daemon(void)
{
	ipvs_daemon_t *d = calloc(2, sizeof(*d));
	memcpy(d, daemons, sizeof(daemons));
	return d;
}

/* libipvs's comparators, as libipvs.c defines them (signed differences stored in an int). */
int ipvs_cmp_services(ipvs_service_entry_t *a, ipvs_service_entry_t *b)
{
	int r;
	if ((r = a->fwmark - b->fwmark))
		return r;
	if ((r = a->af - b->af))
		return r;
	if ((r = a->protocol - b->protocol))
		return r;
	if (a->af == AF_INET6) {
		for (int i = 0; !r && i < 4; i++)
			r = ntohl(a->addr.in6.s6_addr32[i]) - ntohl(b->addr.in6.s6_addr32[i]);
	} else {
		r = ntohl(a->addr.ip) - ntohl(b->addr.ip);
	}
	if (r)
		return r;
	return ntohs(a->port) - ntohs(b->port);
}

int ipvs_cmp_dests(ipvs_dest_entry_t *a, ipvs_dest_entry_t *b)
{
	int r = 0;
	if (a->af == AF_INET6) {
		for (int i = 0; !r && i < 4; i++)
			r = ntohl(a->addr.in6.s6_addr32[i]) - ntohl(b->addr.in6.s6_addr32[i]);
	} else {
		r = ntohl(a->addr.ip) - ntohl(b->addr.ip);
	}
	if (r)
		return r;
	return ntohs(a->port) - ntohs(b->port);
}

typedef int (*cmp_t)(const void *, const void *);

void ipvs_sort_services(struct ip_vs_get_services *s, ipvs_service_cmp_t f)
{
	qsort(s->entrytable, s->num_services, sizeof(ipvs_service_entry_t), (cmp_t)f);
}

void ipvs_sort_dests(struct ip_vs_get_dests *d, ipvs_dest_cmp_t f)
{
	qsort(d->entrytable, d->num_dests, sizeof(ipvs_dest_entry_t), (cmp_t)f);
}

/* The messages libipvs gives for each operation's errno. */
const char *ipvs_strerror(int err)
{
	const char *op = last_op;
	int svc_op = !strcmp(op, "update_service") || !strcmp(op, "del_service") ||
		     !strcmp(op, "zero_service") || !strncmp(op, "get_", 4);
	int dest_op = !strcmp(op, "add_dest") || !strcmp(op, "update_dest") ||
		      !strcmp(op, "del_dest");

	if (!strcmp(op, "add_service") && err == EEXIST)
		return "Service already exists";
	if ((!strcmp(op, "add_service") || !strcmp(op, "update_service")) && err == ENOENT)
		return "Scheduler or persistence engine not found";
	if (svc_op && err == ESRCH)
		return "No such service";
	if (dest_op && err == ESRCH)
		return "Service not defined";
	if (!strcmp(op, "add_dest") && err == EEXIST)
		return "Destination already exists";
	if ((!strcmp(op, "update_dest") || !strcmp(op, "del_dest")) && err == ENOENT)
		return "No such destination";
	if (!strcmp(op, "start_daemon") && err == EEXIST)
		return "Daemon has already run";
	if (!strcmp(op, "stop_daemon") && err == ESRCH)
		return "No daemon is running";
	switch (err) {
	case EPERM: return "Permission denied (you must be root)";
	case EINVAL: return "Invalid operation.  Possibly wrong module version, address not unicast, ...";
	case ENOPROTOOPT: return "Protocol not available";
	case ENOMEM: return "Memory allocation problem";
	case EOPNOTSUPP: return "Operation not supported with IPv6";
	case EAFNOSUPPORT: return "Operation not supported with specified address family";
	case EMSGSIZE: return "Module is wrong version";
	}
	return strerror(err);
}
