// SPDX-License-Identifier: GPL-2.0
/* The packet generator of bench/xdp.py. Run with BPF_PROG_TEST_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES), it writes the headers of each frame from a template and sends
 * it with XDP_TX out of the interface named in the test run's context, cycling the UDP source
 * port over `flows` values so the director sees that many flows. The kernel recycles the
 * frames' pages without restoring what a director wrote into them (a NAT rewrite, a tunnel
 * header), so every header byte is written again on every run. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Ethernet + IPv4 + UDP headers: 42 bytes, written as five words and a half-word. Set by the
 * loader (crates/rvs-xdp/examples/xdp_gen.rs). */
volatile const __u64 template_words[5];
volatile const __u16 template_tail;
volatile const __u32 flows = 1;
volatile const __u16 first_port = 32768;

/* One CPU runs the generator, so a plain global counter is enough. */
__u32 next_flow;

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + 42 > data_end)
		return XDP_ABORTED;
	__u64 *words = data;
	for (int i = 0; i < 5; i++)
		words[i] = template_words[i];
	*(__u16 *)(data + 40) = template_tail;
	__u32 flow = next_flow;
	next_flow = flow + 1 >= flows ? 0 : flow + 1;
	/* The UDP source port, big-endian, at offset 34 (IPv4 without options). */
	__u16 port = first_port + flow;
	*(__u16 *)(data + 34) = __builtin_bswap16(port);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
