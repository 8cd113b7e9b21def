// swift-tools-version:6.0
// ffrepro: layer-local (Forward-Forward) CNN training on CPU.
// Rooms: CSources/FFCore (C kernels), CSources/FFIO (HDF5 + image codecs in C),
// Sources/FFEngine (tensors, layers, models, training, data, io, recipes),
// data-prep/ (dataset converters), Sources/repro (CLI).
import PackageDescription

// C kernels are always optimised, also in debug builds, so `swift test` stays fast.
// Portable baseline flags only: AVX2/AVX-512 paths are chosen at run time.
let cOptimise: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno", "-Wall", "-Wno-unknown-pragmas"])]

let package = Package(
    name: "ffrepro",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "repro", targets: ["repro"]),
        .library(name: "FFEngine", targets: ["FFEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found through pkg-config (installed by `make setup`).
        .systemLibrary(name: "COpenBLAS", path: "CSources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", path: "CSources/CHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CPNG", path: "CSources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "CSources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg-dev"])]),
        // Open MPI's header and library: only the ABI check below links it. The repro binary
        // loads libmpi at run time when started by mpirun/srun (FFMPI), so a plain run needs
        // no MPI library at all.
        .systemLibrary(name: "CMPI", path: "CSources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),

        // Numerical kernels: conv, pooling, norms, goodness, losses, optimizers, RNG.
        .target(name: "FFCore", dependencies: ["COpenBLAS"], path: "CSources/FFCore",
                cSettings: cOptimise + [.unsafeFlags(["-std=gnu11"])],
                linkerSettings: [.linkedLibrary("m"), .linkedLibrary("pthread")]),
        // File formats: HDF5 read/write, PNG/JPEG decode, image resize/augment.
        // zlib comes with libpng-dev (reads .gz datasets).
        .target(name: "FFIO", dependencies: ["CHDF5", "CPNG", "CJPEG"], path: "CSources/FFIO",
                cSettings: cOptimise + [.unsafeFlags(["-std=gnu11"])],
                linkerSettings: [.linkedLibrary("z"), .linkedLibrary("m"), .linkedLibrary("pthread")]),

        // Open MPI through dlopen (non-blocking point-to-point and collectives, stop messages).
        .target(name: "FFMPI", path: "CSources/FFMPI",
                cSettings: cOptimise + [.unsafeFlags(["-std=gnu11"])],
                linkerSettings: [.linkedLibrary("dl")]),
        // FFMPI's hand-declared ABI checked against the installed mpi.h (tests only).
        .target(name: "CMPIABI", dependencies: ["CMPI", "FFMPI"], path: "CSources/CMPIABI",
                cSettings: cOptimise + [.unsafeFlags(["-std=gnu11"])],
                linkerSettings: [.linkedLibrary("dl")]),

        .target(name: "FFEngine", dependencies: ["FFCore", "FFIO", "FFMPI"], path: "Sources/FFEngine",
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "DataPrep", dependencies: ["FFEngine", "FFIO"], path: "data-prep/Sources/DataPrep",
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(name: "repro",
                          dependencies: ["FFEngine", "DataPrep",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/repro",
                          swiftSettings: [.swiftLanguageMode(.v5)]),

        // Test-only helper: temporary folders removed when the tests finish.
        .target(name: "TestScratch", path: "Tests/TestScratch", swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "FFCoreTests", dependencies: ["FFCore"], path: "Tests/FFCoreTests",
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "FFEngineTests", dependencies: ["FFEngine", "FFCore", "FFIO", "TestScratch"],
                    path: "Tests/FFEngineTests", resources: [.copy("Fixtures")],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        // Multi-process training under mpirun (skipped, with the reason, where MPI is absent).
        .testTarget(name: "MPITests", dependencies: ["FFEngine", "FFIO", "FFMPI", "CMPIABI", "DataPrep"],
                    path: "Tests/MPITests", swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "DataPrepTests", dependencies: ["DataPrep", "FFEngine", "FFIO", "TestScratch"],
                    path: "Tests/DataPrepTests", swiftSettings: [.swiftLanguageMode(.v5)]),
        // The `repro` command line through the built binary (.build/<config>/repro).
        .testTarget(name: "CLITests", dependencies: ["FFEngine", "FFIO", "TestScratch"], path: "Tests/CLITests",
                    swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
