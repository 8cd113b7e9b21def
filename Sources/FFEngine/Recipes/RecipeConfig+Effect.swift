/// Fields that only matter under another setting: `--set momentum=0.5` on an AdamW recipe
/// would otherwise be accepted and silently change nothing.
extension RecipeConfig {
    /// Why setting `key` changes nothing in this config (checked after every override is
    /// applied, so `--set optimizer=sgd --set momentum=0.5` is fine), or nil if it matters.
    public func noEffect(_ key: String) -> String? {
        func unless(_ applies: Bool, _ why: String) -> String? { applies ? nil : why }
        switch key {
        case "cov", "cov_directions", "cov_levels", "cov_patch_energies":
            return unless(localLoss == "covariance-goodness",
                          "it applies with local_loss = covariance-goodness (BiCovG), and this config has '\(localLoss)'")
        case "momentum", "nesterov":
            return unless(optimizer == "sgd", "it applies to optimizer = sgd, and this config uses '\(optimizer)'")
        case "beta1", "beta2", "adam_eps":
            return unless(optimizer == "adamw", "it applies to optimizer = adamw, and this config uses '\(optimizer)'")
        case "temperature_init", "temperature_lr_scale":
            return unless(learnTemperature, "it applies with learn_temperature = true (DTG-FF)")
        case "fusion_init_first", "fusion_init_last", "fusion_decay":
            return unless(pred == "goodness-logistic", "it applies with pred = goodness-logistic, and this config has '\(pred)'")
        case "aux_kernel", "aux_bias":
            return unless(localLoss == "class-goodness", "it applies with local_loss = class-goodness (SFF), and this "
                + "config has '\(localLoss)'")
        case "fal_bias":
            return unless(fal, "it applies with fal = true")
        case "rms_eps":
            return unless(inputNorm == "rms-scale" || interLayerNorm == "rms-scale",
                          "it applies with input_norm or inter_layer_norm = rms-scale")
        case "crop_padding":
            return unless(augment == "crop-flip", "it applies with augment = crop-flip, and this config has '\(augment)'")
        case "rrc_scale_min":
            return unless(augment == "rrc-flip", "it applies with augment = rrc-flip, and this config has '\(augment)'")
        case "alpha", "goodness_bins", "readout_std_scale":
            return unless(localLoss == "spatial-goodness" || localLoss == "covariance-goodness",
                          "it applies to the goodness objectives (ASGE, DTG-FF, BiCovG), and this config has '\(localLoss)'")
        default:
            return nil
        }
    }
}
