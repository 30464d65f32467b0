# export_build_commit: sets GC_BUILD_COMMIT, which gc_build_info{commit} on
# /metrics reports, to the work tree's short commit ("-dirty" when it has
# uncommitted changes), unless the caller set one. Run from the repository.
export_build_commit() {
    if [ -z "${GC_BUILD_COMMIT:-}" ]; then
        GC_BUILD_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        if [ "$GC_BUILD_COMMIT" != unknown ] && ! git diff --quiet HEAD 2>/dev/null; then GC_BUILD_COMMIT+="-dirty"; fi
    fi
    export GC_BUILD_COMMIT
}
