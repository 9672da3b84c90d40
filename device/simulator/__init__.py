"""A synthetic person breathing in front of a camera: the demo source's frames, the test videos
and the accuracy benchmark's scenarios (paced, spontaneous, recorded real breathing, with scene
nuisances), each with its ground truth. Only the demo source, the benchmarks and the tests use
it; the appliance's measurement never does."""
