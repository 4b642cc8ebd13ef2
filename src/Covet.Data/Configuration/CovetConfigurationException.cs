namespace Covet.Data;

/// <summary>A Covet setting or connection-string keyword is wrong. <see cref="Setting"/> names it.</summary>
public sealed class CovetConfigurationException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    public CovetConfigurationException(string setting, string message) : base(message, setting) => Setting = setting;

    /// <summary>The option or keyword that is wrong.</summary>
    public string Setting { get; }
}
