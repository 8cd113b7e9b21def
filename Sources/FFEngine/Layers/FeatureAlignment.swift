/// BiCovG's Feature Alignment Layer: x + Conv1x1(x) with the conv zero-initialised (weight
/// and bias), so it starts as the identity and learns a correction of the block input from
/// the loss of the block it enters. Built as a residual unit with an identity shortcut
/// and no activation, whose backward is checked in BlockTests.
public enum FeatureAlignment {
    public static func layer(_ ctx: ComputeContext, name: String, channels: Int, bias: Bool) -> Residual {
        let conv = Conv2d(ctx, name: name, inChannels: channels, outChannels: channels, kernel: 1, bias: bias, seed: 0)
        for p in conv.parameters { Ops.zero(ctx, p.value) }
        return Residual(ctx, main: Sequential([conv]), shortcut: nil, activation: nil)
    }
}
