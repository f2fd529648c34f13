"""The exported package works: install the build tree, build examples/ out of tree with
find_package(binflow), and run the example tool on 1, 2 and 3 ranks. Its results must be
bit-identical across rank counts and its estimate of pi right."""
import math
import os

from e2e_common import Context, build_step, read_attributes, read_group, identical

ctx = Context()
build = os.path.dirname(os.path.dirname(ctx.binflow))
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
prefix = ctx.path("prefix")
example_build = ctx.path("example-build")


if (build_step(ctx, "cmake --install of the build tree", ["cmake", "--install", build, "--prefix", prefix])
        and build_step(ctx, "examples/ configures with find_package(binflow)",
                 ["cmake", "-S", os.path.join(repo, "examples"), "-B", example_build,
                  f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release"])
        and build_step(ctx, "binflow_example builds",
                 ["cmake", "--build", example_build, "--target", "binflow_example", "-j2"])):
    # Context.run launches ctx.binflow, plain or under mpiexec with the test environment.
    ctx.binflow = os.path.join(example_build, "binflow_example")

    usage = ctx.run(["pi", "--help"])
    ctx.check(usage.returncode == 0 and "--samples" in usage.stdout, "pi --help lists --samples",
              usage.stdout + usage.stderr)

    results = {}
    for ranks in (None, 2, 3):
        label = "plain" if ranks is None else f"{ranks} ranks"
        outfile = f"pi-{ranks or 1}.h5"
        run = ctx.run(["pi", "--trials", "24", "--outfile", outfile], ranks=ranks)
        if ctx.check(run.returncode == 0, f"pi --trials 24 ({label}) exits 0",
                     run.stdout[-3000:] + run.stderr[-3000:]):
            results[label] = (read_group(ctx.path(outfile)), read_attributes(ctx.path(outfile)))

    if "plain" in results:
        table, attributes = results["plain"]
        ctx.check(len(table["estimate"]) == 24, "24 trials in /results", len(table["estimate"]))
        mean = float(attributes.get("mean_estimate", "nan"))
        ctx.check(abs(mean - math.pi) < 0.01, "mean estimate within 0.01 of pi", mean)
        ctx.check(abs(mean - table["estimate"].mean()) < 1e-12,
                  "mean_estimate attribute is the mean of /results/estimate", mean)
        for label in ("2 ranks", "3 ranks"):
            if label in results:
                same, why = identical(table, results[label][0])
                ctx.check(same, f"/results (estimate, inside, ...) bit-identical plain vs {label}",
                          why)
                ctx.check(results[label][1].get("mean_estimate") == attributes["mean_estimate"],
                          f"mean_estimate identical plain vs {label}")

ctx.finish()
