// The typed vocabulary (roles, segments, setups, durations, addresses, lab state) is part of the
// core's interface: every user of the core sees it.
@_exported import NetprobeModel
