// The conformance suite; see BrokerConformance.swift.
