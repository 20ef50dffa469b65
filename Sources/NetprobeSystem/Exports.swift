// swift-system's typed errno (`Errno`) and descriptors (`FileDescriptor`) are part of this
// module's interface: every user of the spawner and of `systemCall` sees them.
@_exported import SystemPackage
