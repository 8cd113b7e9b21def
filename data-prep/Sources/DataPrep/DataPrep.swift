import FFEngine
/// Dataset converters (placeholder until the data room lands).
public enum DataPrep {}
