import FFEngine
import XCTest

/// Checks shared by BlockTests and BiCovGTests: finite differences of a layer stack and a
/// local objective, and one trainer step against hand-chained backprop.
protocol GradientChecking: XCTestCase {
    var ctx: ComputeContext { get }
}

extension GradientChecking {
    func random(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        let t = Tensor(uninitialized: shape)
        var rng = RNG(seed: seed)
        rng.fillNormal(t, std: std)
        return t
    }

    /// Mean CE of `objective` on `body(x)`, forward only (BatchNorm in training mode).
    func loss(_ body: Sequential, _ objective: LocalObjective, _ x: Tensor, _ labels: [Int32]) -> Double {
        let y = body.forward(x, .train(cache: false))
        return Ops.softmaxCrossEntropy(ctx, logits: objective.forward(y, cache: false), labels: labels).loss
    }

    /// Analytic gradients of that loss (parameters' .grad, and the returned input gradient)
    /// against central differences, at sampled entries of every parameter and of x.
    func checkGradients(_ what: String, body: Sequential, objective: LocalObjective, x: Tensor, labels: [Int32],
                        eps: Float = 1e-3, tol: Double = 2e-2, file: StaticString = #filePath, line: UInt = #line) {
        let params = body.parameters + objective.parameters
        for p in params { Ops.zero(ctx, p.grad) }
        let y = body.forward(x, .train(cache: true))
        let scores = objective.forward(y, cache: true)
        let d = Tensor(uninitialized: scores.shape)
        _ = Ops.softmaxCrossEntropy(ctx, logits: scores, labels: labels, dlogits: d)
        let dx = body.backward(objective.backward(d), inputGrad: true)!
        body.releaseCache()
        objective.releaseCache()
        func numeric(_ t: Tensor, _ i: Int) -> Double {
            let orig = t[i]
            t[i] = orig + eps
            let fp = loss(body, objective, x, labels)
            t[i] = orig - eps
            let fm = loss(body, objective, x, labels)
            t[i] = orig
            return (fp - fm) / Double(2 * eps)
        }
        var checked = 0
        for p in params + [Parameter(name: "input", value: x)] {
            let g = p.name == "input" ? dx : p.grad
            // Relative to the tensor's own gradient scale, so small gradients are checked too;
            // 2e-4 is about the float forward's finite-difference noise at this eps.
            let scale = max(g.array.map { abs(Double($0)) }.max() ?? 0, 2e-3)
            let step = max(1, p.value.count / 12)
            for i in stride(from: 0, to: p.value.count, by: step) {
                let num = numeric(p.value, i)
                XCTAssertEqual(Double(g[i]), num, accuracy: tol * max(abs(num), 0.1 * scale) + 2e-4,
                               "\(what): \(p.name)[\(i)]", file: file, line: line)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20, what, file: file, line: line)
    }

    /// Gradients of one trainer step (lr 0) on `config`, and of the same blocks computed by
    /// chaining the layers' forward and backward by hand: block inputs detached, through the
    /// block's entry (BiCovG's alignment layer) when it has one, LayerNorm between blocks when
    /// the config has it, the local loss at each block's last unit. Must be bit-identical.
    func assertTrainerMatchesHandChained(_ config: RecipeConfig, shape: [Int]) throws {
        let net = try Network(ctx, config: config, inputShape: Array(shape.dropFirst()), classes: 5)
        let x = random(shape, seed: 7)
        let labels = (0..<shape[0]).map { Int32($0 % 5) }
        let trainer = Trainer(ctx, net: net)
        var tally = Tally(units: net.readouts.count)
        try trainer.trainStep(Batch(images: x, labels: labels), lr: 0, tally: &tally)
        let engine = Dictionary(uniqueKeysWithValues: net.parameters.map { ($0.name, $0.grad.array) })
        // BatchNorm running statistics moved during the step; they do not enter training-mode outputs.
        for p in net.parameters { Ops.zero(ctx, p.grad) }
        var input = x
        for block in net.blocks {
            var t = block.entry.forward(input, .train(cache: true))
            for u in block.units {
                let y = u.body.forward(t, .train(cache: true))
                t = u === block.units.last! ? y : u.post.forward(y, .train(cache: true))
            }
            let last = block.units.last!
            let scores = last.local!.forward(t, cache: true)
            let d = Tensor(uninitialized: scores.shape)
            _ = Ops.softmaxCrossEntropy(ctx, logits: scores, labels: labels, dlogits: d)
            var g: Tensor? = last.local!.backward(d)
            for u in block.units.reversed() {
                if u !== last { g = u.post.backward(g!, inputGrad: true) }
                g = u.body.backward(g!, inputGrad: u !== block.units.first! || block.hasEntry)
            }
            if block.hasEntry { _ = block.entry.backward(g!, inputGrad: false) }
            let out = last.post.forward(t, .eval)
            block.releaseCache()
            input = block.boundary.forward(out, .eval)
        }
        for p in net.parameters {
            XCTAssertEqual(engine[p.name], p.grad.array, "\(p.name): trainer and hand-chained backprop differ")
        }
    }
}
