using System.Data.Common;

namespace Covet.Data.Tests.Fakes;

/// <summary>
/// The error thrown by the fake provider. Carries a PostgreSQL-style <see cref="SqlState"/> and an
/// <see cref="IsTransient"/> flag, so pool code that classifies errors through the standard
/// <see cref="DbException"/> members can be tested.
/// </summary>
public sealed class FakeDbException : DbException
{
    /// <summary>SqlState used when an open fails (scripted failure, refusal, connect timeout).</summary>
    public const string CannotConnectState = "08001";

    /// <summary>SqlState used when the server killed the connection (<see cref="FakeServer.KillAll"/>, <c>BREAK</c>).</summary>
    public const string AdminShutdownState = "57P01";

    /// <summary>SqlState used for a query error (<c>FAIL</c>).</summary>
    public const string SyntaxErrorState = "42601";

    /// <summary>SqlState used for a command timeout or a <see cref="System.Data.Common.DbCommand.Cancel"/>.</summary>
    public const string QueryCanceledState = "57014";

    /// <summary>SqlState used for <c>DISCARD ALL</c> inside a transaction.</summary>
    public const string ActiveTransactionState = "25001";

    private readonly bool _isTransient;

    public FakeDbException(string message, string sqlState, bool isTransient, Exception? innerException = null)
        : base(message, innerException)
    {
        SqlState = sqlState;
        _isTransient = isTransient;
    }

    /// <inheritdoc />
    public override string SqlState { get; }

    /// <inheritdoc />
    public override bool IsTransient => _isTransient;

    internal static FakeDbException CannotConnect() =>
        new("fake: cannot connect", CannotConnectState, isTransient: true);

    internal static FakeDbException ConnectTimeout() =>
        new("fake: timeout", CannotConnectState, isTransient: true);

    internal static FakeDbException CommandTimeout() =>
        new("fake: timeout", QueryCanceledState, isTransient: true);

    internal static FakeDbException Canceled() =>
        new("fake: canceling statement due to user request", QueryCanceledState, isTransient: false);

    internal static FakeDbException AdminShutdown() =>
        new("fake: terminating connection due to administrator command", AdminShutdownState, isTransient: true);

    internal static FakeDbException SyntaxError() =>
        new("fake: syntax error (FAIL)", SyntaxErrorState, isTransient: false);

    internal static FakeDbException DiscardInTransaction() =>
        new("fake: DISCARD ALL cannot run inside a transaction block", ActiveTransactionState, isTransient: false);
}
