using System.Data.Common;

namespace Covet.Data.Tests.Fakes;

/// <summary>The fake provider's factory; every connection it creates talks to <see cref="Server"/>.</summary>
public sealed class FakeDbProviderFactory : DbProviderFactory
{
    public FakeDbProviderFactory()
        : this(new FakeServer())
    {
    }

    public FakeDbProviderFactory(FakeServer server)
    {
        ArgumentNullException.ThrowIfNull(server);
        Server = server;
    }

    public FakeServer Server { get; }

    public override bool CanCreateBatch => false;

    public override DbConnection CreateConnection() => new FakeDbConnection(Server, connectionString: null, this);

    public override DbCommand CreateCommand() => new FakeDbCommand();

    public override DbParameter CreateParameter() => new FakeDbParameter();

    public override DbConnectionStringBuilder CreateConnectionStringBuilder() => new();
}
