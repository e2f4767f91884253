// The in-process backend; see MemoryBroker.swift.
