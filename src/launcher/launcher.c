/*
 * launcher.c - the projstore executable: a small front that loads the rest
 * of projstore (projstore-core.so: every command, the store, the catalog,
 * the agent, the server, with zstd, lz4, OpenSSL, SQLite, FUSE...) and runs
 * it, after answering itself the two things that must be fast and need none
 * of that: --version, and `where` asked of a `projstore serve` (--api or
 * $PROJSTORE_API; cli_api.c). A front end that calls `projstore where` for
 * every request so pays for starting a process that links libc and jansson,
 * not for loading a dozen libraries it does not use (~5 ms here).
 *
 * The core is looked for next to the executable, then in ../lib/projstore/
 * relative to it; $PROJSTORE_CORE names another file. Anything the fast
 * path does not recognise as a plain `where` goes to the core, which parses
 * and checks everything as before.
 */
#define _GNU_SOURCE
#include "../cli/cli_api.h"
#include "projstore.h"       /* PS_VERSION, ps_project_id_valid (inline): nothing of the library is linked */

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* `[--store S] where [--json] [--api URL] PROJECT` with an API to ask:
 * answered here (returns 1, *rc the exit code); anything else: 0. */
static int fast_where(int argc, char **argv, int *rc)
{
	const char *api = getenv("PROJSTORE_API"), *id = NULL;
	int i = 1, json = 0;
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			i += 2;
		else if (!strncmp(argv[i], "--store=", 8))
			i++;
		else
			return 0;        /* --catalog and the rest: the core decides */
	}
	if (i >= argc || strcmp(argv[i], "where"))
		return 0;
	for (i++; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--api") && i + 1 < argc)
			api = argv[++i];
		else if (!strncmp(argv[i], "--api=", 6))
			api = argv[i] + 6;
		else if (argv[i][0] != '-' && !id)
			id = argv[i];
		else
			return 0;
	}
	if (!id || !ps_project_id_valid(id) || !api || !*api)
		return 0;
	*rc = cli_api_where(api, id, json);
	return 1;
}

typedef int (*core_main_fn)(int, char **);

static void *load_core(char *path, size_t len)
{
	const char *env = getenv("PROJSTORE_CORE");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;
	void *h;
	if (env && *env) {
		snprintf(path, len, "%s", env);
		return dlopen(path, RTLD_NOW | RTLD_LOCAL);
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(path, len, "projstore-core.so");
		return NULL;
	}
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	snprintf(path, len, "%s/projstore-core.so", exe);
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
		return h;
	if (access(path, F_OK) == 0)
		return NULL;      /* there, but it does not load: say so */
	snprintf(path, len, "%s/../lib/projstore/projstore-core.so", exe);
	return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

int main(int argc, char **argv)
{
	char path[PATH_MAX + 64];
	core_main_fn core_main;
	void *h;
	int rc;
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("projstore %s\n", PS_VERSION);
		return 0;
	}
	if (fast_where(argc, argv, &rc))
		return rc;
	h = load_core(path, sizeof(path));
	if (!h) {
		const char *e = dlerror();
		fprintf(stderr, "projstore: cannot load %s: %s\n", path, e ? e : "not found");
		return 1;
	}
	core_main = (core_main_fn)dlsym(h, "ps_cli_main");
	if (!core_main) {
		fprintf(stderr, "projstore: %s has no ps_cli_main\n", path);
		return 1;
	}
	return core_main(argc, argv);
}
