# The compose stack run for real on this machine (docker-compose.yml, podman's Docker API, Compose v2).
#   make compose-test    install podman if missing (scripts/install-podman.sh), build every image the
#                        project owns on a locally made Debian base, stand-ins for the registry
#                        images, `compose up --wait` with no profile and no .env, check it through its
#                        ports, stop it and put the host back (tests/deploy/test_compose_run.py)
#   make compose-clean   remove the images compose-test keeps as its cache (base, stand-ins, builds)
.PHONY: compose-test compose-clean

compose-test: $(STAMP) ## Build the images, run docker-compose.yml with podman, check it through its ports, stop it
	bash scripts/install-podman.sh
	COMPOSE_TEST=1 $(PY) -m pytest -ra -s -p no:cacheprovider tests/deploy/test_compose_run.py $(PYTEST_ARGS)

compose-clean: ## Remove the images make compose-test keeps as its cache
	podman images --format '{{.Repository}}:{{.Tag}}' \
		| grep -E '^localhost/model-serving-(standin|compose-test)/' | xargs -r podman rmi --force
	podman image prune --force
