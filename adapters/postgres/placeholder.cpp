namespace dialer::pg {}
