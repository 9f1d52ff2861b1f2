/*
 * A same-machine C reference for the interval-tree benchmark: an augmented red-black interval
 * tree laid out like the kernel's (struct rb_node + start/last/subtree_last, 48 bytes a node,
 * nodes in one array in insertion order), run on the MMU-like workload of ../workloads.ts with
 * the same xorshift32 streams. Prints one JSON line: ns per insert, per query at k ~ 0, 1, 10
 * and 100 results, and per removal (median of the runs), for n given on the command line.
 *
 * Written for this benchmark from the algorithm (CLRS red-black fix-ups with the augmented
 * rotate/propagate of include/linux/rbtree_augmented.h); it is not kernel code.
 *
 *   cc -O2 -o itree itree.c && ./itree 100000 5
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <time.h>

struct node {
	struct node *parent, *left, *right;
	int red;
	uint64_t start, last, max;
};

struct tree {
	struct node *root, *leftmost;
};

static uint32_t rng_state;
static uint32_t rng_next(void)
{
	uint32_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return rng_state = x;
}
static double rng_float(void) { return rng_next() / 4294967296.0; }
static uint32_t rng_below(double n) { return (uint32_t)(rng_float() * n); }

static uint64_t node_max(struct node *n)
{
	uint64_t m = n->last;
	if (n->left && n->left->max > m) m = n->left->max;
	if (n->right && n->right->max > m) m = n->right->max;
	return m;
}

static void replace_child(struct tree *t, struct node *old, struct node *child)
{
	struct node *p = old->parent;
	if (child) child->parent = p;
	if (!p) t->root = child;
	else if (p->left == old) p->left = child;
	else p->right = child;
}

/* dir 0: left rotation (the right child rises); 1: right rotation. */
static void rotate(struct tree *t, struct node *x, int dir)
{
	struct node *y = dir ? x->left : x->right;
	struct node *mid = dir ? y->right : y->left;
	if (dir) x->left = mid; else x->right = mid;
	if (mid) mid->parent = x;
	replace_child(t, x, y);
	if (dir) y->right = x; else y->left = x;
	x->parent = y;
	y->max = x->max;
	x->max = node_max(x);
}

static int is_red(struct node *n) { return n && n->red; }

static void insert(struct tree *t, struct node *z)
{
	struct node *parent = NULL, *cur = t->root;
	int left = 0, leftmost = 1;
	z->left = z->right = NULL;
	z->red = 1;
	z->max = z->last;
	while (cur) {
		if (cur->max < z->last) cur->max = z->last;
		parent = cur;
		left = z->start < cur->start;
		if (!left) leftmost = 0;
		cur = left ? cur->left : cur->right;
	}
	z->parent = parent;
	if (!parent) t->root = z;
	else if (left) parent->left = z;
	else parent->right = z;
	if (leftmost) t->leftmost = z;
	struct node *p;
	while ((p = z->parent) && p->red) {
		struct node *g = p->parent;
		int pl = g->left == p;
		struct node *u = pl ? g->right : g->left;
		if (is_red(u)) {
			p->red = u->red = 0;
			g->red = 1;
			z = g;
			continue;
		}
		if (z == (pl ? p->right : p->left)) {
			rotate(t, p, !pl);
			z = p;
			p = z->parent;
		}
		p->red = 0;
		g->red = 1;
		rotate(t, g, pl);
		break;
	}
	t->root->red = 0;
}

static void propagate(struct node *n, struct node *stop)
{
	while (n != stop) {
		uint64_t m = node_max(n);
		if (n->max == m) break;
		n->max = m;
		n = n->parent;
	}
}

static struct node *successor(struct node *s)
{
	if (s->right) {
		s = s->right;
		while (s->left) s = s->left;
		return s;
	}
	while (s->parent && s->parent->right == s) s = s->parent;
	return s->parent;
}

static void erase(struct tree *t, struct node *z)
{
	struct node *x, *xp;
	int removed_red;
	if (t->leftmost == z) t->leftmost = successor(z);
	if (!z->left || !z->right) {
		x = z->left ? z->left : z->right;
		xp = z->parent;
		removed_red = z->red;
		replace_child(t, z, x);
		propagate(xp, NULL);
	} else {
		struct node *y = z->right;
		while (y->left) y = y->left;
		removed_red = y->red;
		x = y->right;
		if (y->parent == z) {
			xp = y;
		} else {
			xp = y->parent;
			xp->left = x;
			if (x) x->parent = xp;
			y->right = z->right;
			z->right->parent = y;
		}
		replace_child(t, z, y);
		y->left = z->left;
		z->left->parent = y;
		y->red = z->red;
		y->max = z->max;
		if (xp != y) propagate(xp, y);
		propagate(y, NULL);
	}
	if (removed_red) return;
	while (x != t->root && !is_red(x)) {
		struct node *p = xp;
		int xl = p->left == x;
		struct node *w = xl ? p->right : p->left;
		if (w->red) {
			w->red = 0;
			p->red = 1;
			rotate(t, p, !xl);
			w = xl ? p->right : p->left;
		}
		struct node *near = xl ? w->left : w->right, *far = xl ? w->right : w->left;
		if (!is_red(near) && !is_red(far)) {
			w->red = 1;
			x = p;
			xp = p->parent;
			continue;
		}
		if (!is_red(far)) {
			near->red = 0;
			w->red = 1;
			rotate(t, w, xl);
			w = xl ? p->right : p->left;
			far = xl ? w->right : w->left;
		}
		w->red = p->red;
		p->red = 0;
		far->red = 0;
		rotate(t, p, !xl);
		x = t->root;
		break;
	}
	if (x) x->red = 0;
}

static struct node *subtree_search(struct node *n, uint64_t start, uint64_t last)
{
	for (;;) {
		if (n->left && start <= n->left->max) {
			n = n->left;
			continue;
		}
		if (n->start > last) return NULL;
		if (start <= n->last) return n;
		n = n->right;
		if (!n || n->max < start) return NULL;
	}
}

static struct node *iter_first(struct tree *t, uint64_t start, uint64_t last)
{
	if (!t->root || t->root->max < start || t->leftmost->start > last) return NULL;
	return subtree_search(t->root, start, last);
}

static struct node *iter_next(struct node *n, uint64_t start, uint64_t last)
{
	struct node *r = n->right;
	for (;;) {
		if (r && start <= r->max) return subtree_search(r, start, last);
		struct node *prev;
		do {
			prev = n;
			n = n->parent;
			if (!n) return NULL;
			r = n->right;
		} while (prev == r);
		if (last < n->start) return NULL;
		if (start <= n->last) return n;
	}
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return v[n / 2];
}

#define PAGE 4096ULL

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	static const int ks[4] = {0, 1, 10, 100};
	int base = n >= 1000000 ? 10000 : 20000;
	if (n < 2 || runs < 1 || runs > 99) {
		fprintf(stderr, "usage: itree <n >= 2> [runs 1-99]\n");
		return 2;
	}
	uint64_t *start = malloc(n * sizeof *start), *last = malloc(n * sizeof *last);
	uint64_t *qs[4], qlen[4];
	int nq[4];
	int *order = malloc(n * sizeof *order);
	struct node *nodes = malloc(n * sizeof *nodes);
	if (!start || !last || !order || !nodes) return 1;
	/* makeIntervals('mmu', n) of ../workloads.ts */
	rng_state = 0x9e3779b9;
	double total = 0;
	for (int i = 0; i < n; i++) {
		uint64_t s;
		if (i > 0 && rng_below(100) < 5) s = start[rng_below(i)];
		else s = (uint64_t)(rng_float() * 17179869184.0) * PAGE;
		uint64_t pages = rng_below(100) == 0 ? 1 + rng_below(262144) : 1 + rng_below(512);
		start[i] = s;
		last[i] = s + pages * PAGE - 1;
		total += pages * PAGE;
	}
	/* makeQueries(iv, n, k, count, 0x5eed + k): k = 0 is 16 pages; else sized for k results */
	for (int j = 0; j < 4; j++) {
		int k = ks[j];
		double len = k == 0 ? 16 * PAGE : floor(k * 70368744177664.0 / n - total / n + 0.5);
		if (len < 1) len = 1;
		qlen[j] = (uint64_t)ceil(len / PAGE) * PAGE;
		nq[j] = k >= 100 ? base / 10 : k >= 10 ? base / 2 : base;
		qs[j] = malloc(nq[j] * sizeof *qs[j]);
		if (!qs[j]) return 1;
		rng_state = 0x5eed + k;
		for (int i = 0; i < nq[j]; i++) qs[j][i] = (uint64_t)(rng_float() * 17179869184.0) * PAGE;
	}
	/* permutation(n, 0xbeef) */
	rng_state = 0xbeef;
	for (int i = 0; i < n; i++) order[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = rng_below(i + 1), tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	double b[99], q[4][99], r[99];
	long found = 0;
	for (int run = 0; run < runs; run++) {
		struct tree t = {NULL, NULL};
		double t0 = now_ns();
		for (int i = 0; i < n; i++) {
			nodes[i].start = start[i];
			nodes[i].last = last[i];
			insert(&t, &nodes[i]);
		}
		b[run] = (now_ns() - t0) / n;
		for (int j = 0; j < 4; j++) {
			t0 = now_ns();
			for (int i = 0; i < nq[j]; i++) {
				uint64_t s = qs[j][i], l = s + qlen[j] - 1;
				for (struct node *x = iter_first(&t, s, l); x; x = iter_next(x, s, l)) found++;
			}
			q[j][run] = (now_ns() - t0) / nq[j];
		}
		t0 = now_ns();
		for (int i = 0; i < n / 2; i++) erase(&t, &nodes[order[i]]);
		r[run] = (now_ns() - t0) / (n / 2);
	}
	printf("{\"n\":%d,\"insert\":%.1f,\"query\":%.1f,\"queryK\":{\"1\":%.1f,\"10\":%.1f,\"100\":%.1f},"
	       "\"remove\":%.1f,\"bytesPerNode\":%zu,\"found\":%ld}\n",
	       n, median(b, runs), median(q[0], runs), median(q[1], runs), median(q[2], runs),
	       median(q[3], runs), median(r, runs), sizeof(struct node), found);
	return 0;
}
